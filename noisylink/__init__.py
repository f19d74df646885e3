"""noisylink: a streaming communication-link simulator for images.

The flow (see docs/design.md): scenario -> grid of cells -> transmitter (codec, frames, ECC,
interleaver, modulation) -> channel -> receiver (demodulation, ECC decoding, codec decoding)
-> metrics -> one results row per (cell, image, trial).
"""

__version__ = "0.1.0"

__all__ = ["__version__"]
