"""Image codecs behind one contract (see ``noisylink.codecs.base``)."""

from noisylink.codecs import classical  # noqa: F401
from noisylink.codecs.base import (
    CODECS,
    Codec,
    Encoded,
    RateKnob,
    as_hwc,
    codec_class,
    gray_image,
)
from noisylink.codecs.diffusion import codecs as diffusion_codecs  # noqa: F401
from noisylink.codecs.diffusion import diffc as diffc_codec  # noqa: F401
from noisylink.codecs.jscc import codecs as jscc_codecs  # noqa: F401
from noisylink.codecs.learned import codec as learned_codecs  # noqa: F401

__all__ = ["CODECS", "Codec", "Encoded", "RateKnob", "as_hwc", "codec_class", "gray_image"]
