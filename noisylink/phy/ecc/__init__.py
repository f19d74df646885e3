"""Error-correcting codes behind one contract (see ``base``), looked up by name in ``ECCS``.

Importing this package registers every code: ``none``, ``repetition``, ``rs``, ``ldpc``,
``conv`` (rate 1/2, or punctured to 2/3, 3/4, 5/6, 7/8), and ``concatenated`` (``rs`` outer
code, byte interleaving of depth 1..8, ``conv`` or ``ldpc`` inner code, as CCSDS 131.0-B).
``rs``, ``ldpc`` and ``conv`` are packages with one module per decoder backend (``numba``,
``torch``, ``reference``), chosen by their ``backend`` setting (``backends``). ``unequal``
(module ``unequal``) is not a code but a split of a payload between codes: a link builds what its
``ecc`` setting describes with ``protection_of``.
"""

from noisylink.phy.ecc.base import ECC, ECCS, hard_decision, n_blocks, pad_to_blocks
from noisylink.phy.ecc.concatenated import Concatenated, ConcatenatedConfig
from noisylink.phy.ecc.convolutional import Convolutional, ConvolutionalConfig
from noisylink.phy.ecc.ldpc import LDPC, LDPCConfig
from noisylink.phy.ecc.none import NoECC, NoECCConfig
from noisylink.phy.ecc.reed_solomon import ReedSolomon, ReedSolomonConfig
from noisylink.phy.ecc.repetition import RepetitionCode, RepetitionConfig
from noisylink.phy.ecc.unequal import Protection, UnequalConfig, protection_of

__all__ = [
    "ECC",
    "ECCS",
    "LDPC",
    "Concatenated",
    "ConcatenatedConfig",
    "Convolutional",
    "ConvolutionalConfig",
    "LDPCConfig",
    "NoECC",
    "NoECCConfig",
    "Protection",
    "ReedSolomon",
    "ReedSolomonConfig",
    "RepetitionCode",
    "RepetitionConfig",
    "UnequalConfig",
    "hard_decision",
    "n_blocks",
    "pad_to_blocks",
    "protection_of",
]
