"""The K=7 (171, 133) convolutional code: ``code`` (settings, encoder, the ECC), ``trellis``
(tables), and one module per Viterbi decoder backend: ``numba``, ``torch``, ``reference``."""

from noisylink.phy.ecc.convolutional.code import Convolutional, ConvolutionalConfig

__all__ = ["Convolutional", "ConvolutionalConfig"]
