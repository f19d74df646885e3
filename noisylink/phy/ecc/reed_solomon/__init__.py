"""Reed-Solomon RS(255, k): ``code`` (settings, encoder, syndromes, the ECC), ``field``
(GF(256) tables), and one module per decoder backend: ``numba``, ``torch``, ``reference``."""

from noisylink.phy.ecc.reed_solomon.code import ReedSolomon, ReedSolomonConfig

__all__ = ["ReedSolomon", "ReedSolomonConfig"]
