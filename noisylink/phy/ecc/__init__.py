"""Error-correcting codes behind one contract (see ``base``), looked up by name in ``ECCS``.

Importing this package registers every code: ``none``, ``repetition``, ``rs``, ``ldpc``,
``conv``. The last three are packages with one module per decoder backend (``numba``,
``torch``, ``reference``), chosen by their ``backend`` setting (``backends``).
"""

from noisylink.phy.ecc.base import ECC, ECCS, hard_decision, n_blocks, pad_to_blocks
from noisylink.phy.ecc.convolutional import Convolutional, ConvolutionalConfig
from noisylink.phy.ecc.ldpc import LDPC, LDPCConfig
from noisylink.phy.ecc.none import NoECC, NoECCConfig
from noisylink.phy.ecc.reed_solomon import ReedSolomon, ReedSolomonConfig
from noisylink.phy.ecc.repetition import RepetitionCode, RepetitionConfig

__all__ = [
    "ECC",
    "ECCS",
    "LDPC",
    "Convolutional",
    "ConvolutionalConfig",
    "LDPCConfig",
    "NoECC",
    "NoECCConfig",
    "ReedSolomon",
    "ReedSolomonConfig",
    "RepetitionCode",
    "RepetitionConfig",
    "hard_decision",
    "n_blocks",
    "pad_to_blocks",
]
