"""802.11n LDPC: ``code`` (settings, tables, encoder, ``decode_batch``, the ECC),
``ieee80211n`` (the standard's prototype matrices), ``graph`` (Tanner graphs), ``bp`` (the
belief-propagation rules), one module per decoder backend: ``numba``, ``torch``,
``reference``, and ``simd`` (``precision: int16``: layered min-sum in 16-bit lanes across
frames)."""

from noisylink.phy.ecc.ldpc.code import LDPC, LDPCConfig

__all__ = ["LDPC", "LDPCConfig"]
