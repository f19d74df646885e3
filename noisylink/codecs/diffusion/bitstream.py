"""Bit layouts of the three reverse-channel-coding methods (DDCM, Turbo-DDCM, Robust Turbo-DDCM).

Each of the T bit-carrying steps writes a fixed number of bits, most significant bit first; the
whole stream is padded with zeros at the end to whole bytes, so a flipped bit never shifts a
later field. Per step:

- ``ddcm``: the chosen index in ceil(log2 K) bits (M = 1, no sign).
- ``turbo``: the rank of the sorted index set in ceil(log2 C(K, M)) bits, then M sign bits
  (1 = positive) in ascending index order.
- ``robust``: for each of the M atoms in the order given, ceil(log2 K) index bits then one sign
  bit (1 = positive).

Unpacking never raises on any payload (the decoder must survive any bits): missing bits read as
zeros, extra bytes are ignored, an out-of-range rank is reduced modulo C(K, M) and an out-of-range
index modulo K.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal, get_args

import numpy as np

from noisylink.codecs.diffusion.combinatorics import combination_rank, combination_unrank, rank_bits

Method = Literal["ddcm", "turbo", "robust"]
METHODS: tuple[str, ...] = get_args(Method)


def index_bits(K: int) -> int:
    """Bits for one atom index: ceil(log2 K), for K >= 2."""
    if K < 2:
        raise ValueError(f"K must be at least 2, got {K}")
    return (K - 1).bit_length()


def _check(method: str, K: int, M: int) -> None:
    """Raise ValueError for an unknown method or sizes it cannot use."""
    if method not in METHODS:
        raise ValueError(f"unknown method {method!r}; expected one of {METHODS}")
    if K < 2:
        raise ValueError(f"K must be at least 2, got {K}")
    if not 1 <= M <= K:
        raise ValueError(f"M must be in [1, K={K}], got {M}")
    if method == "ddcm" and M != 1:
        raise ValueError(f"ddcm sends one atom per step (M = 1), got M={M}")


def bits_per_step(method: Method, K: int, M: int) -> int:
    """Bits each bit-carrying step writes, by the method's formula."""
    _check(method, K, M)
    if method == "ddcm":
        return index_bits(K)
    if method == "turbo":
        return rank_bits(K, M) + M
    return M * (index_bits(K) + 1)


def stream_bits(method: Method, K: int, M: int, T: int) -> int:
    """Bits of a whole stream of T steps (before the zero padding to whole bytes)."""
    if T < 0:
        raise ValueError(f"T must be non-negative, got {T}")
    return T * bits_per_step(method, K, M)


def _int_to_bits(value: int, width: int) -> np.ndarray:
    """``value`` (0 <= value < 2**width) as ``width`` bits, most significant first (uint8)."""
    if width == 0:
        return np.zeros(0, dtype=np.uint8)
    raw = value.to_bytes((width + 7) // 8, "big")
    return np.unpackbits(np.frombuffer(raw, dtype=np.uint8))[-width:]


def _bits_to_int(bits: np.ndarray) -> int:
    """The unsigned integer whose bits, most significant first, are ``bits``."""
    padded = np.concatenate([np.zeros((-bits.size) % 8, dtype=np.uint8), bits.astype(np.uint8)])
    return int.from_bytes(np.packbits(padded).tobytes(), "big")


def _index_bits_array(indices: np.ndarray, width: int) -> np.ndarray:
    """Bits of each index, most significant first: shape [..., width] (uint8)."""
    shifts = np.arange(width - 1, -1, -1, dtype=np.int64)
    return ((indices[..., None] >> shifts) & 1).astype(np.uint8)


def _uint_fields(bits: np.ndarray) -> np.ndarray:
    """Read the last axis of a 0/1 array as unsigned integers, most significant first (int64)."""
    width = bits.shape[-1]
    weights = np.left_shift(np.int64(1), np.arange(width - 1, -1, -1, dtype=np.int64))
    return (bits.astype(np.int64) * weights).sum(axis=-1)


def _payload_bits(payload: bytes, n_bits: int) -> np.ndarray:
    """The first ``n_bits`` bits of ``payload``; bits past its end read as zeros."""
    raw = np.frombuffer(bytes(payload[: (n_bits + 7) // 8]), dtype=np.uint8)
    bits = np.unpackbits(raw)[:n_bits]
    if bits.size < n_bits:
        bits = np.concatenate([bits, np.zeros(n_bits - bits.size, dtype=np.uint8)])
    return bits


def pack(method: Method, K: int, indices: np.ndarray, signs: np.ndarray | None = None) -> bytes:
    """Pack the chosen atoms of T steps (``indices`` and ``signs`` of shape [T, M]) into bytes.

    ``signs`` holds +1/-1 (None means all +1); ddcm ignores them. Turbo sorts each step's
    indices ascending, carrying their signs along. The result has ceil(stream_bits / 8) bytes.
    """
    indices = np.asarray(indices)
    if indices.ndim != 2 or not np.issubdtype(indices.dtype, np.integer):
        raise ValueError(f"indices must be an integer array of shape [T, M], got {indices.shape}")
    T, M = indices.shape
    _check(method, K, M)
    indices = indices.astype(np.int64)
    if indices.size and (indices.min() < 0 or indices.max() >= K):
        raise ValueError(f"indices must lie in [0, {K})")
    if signs is None or method == "ddcm":
        signs = np.ones((T, M), dtype=np.int8)
    signs = np.asarray(signs)
    if signs.shape != (T, M):
        raise ValueError(f"signs must have shape {(T, M)}, got {signs.shape}")
    if not np.all((signs == 1) | (signs == -1)):
        raise ValueError("signs must be +1 or -1")
    sign_bits = (signs > 0).astype(np.uint8)

    if method == "ddcm":
        bits = _index_bits_array(indices, index_bits(K))
    elif method == "robust":
        fields = np.concatenate(
            [_index_bits_array(indices, index_bits(K)), sign_bits[..., None]], axis=-1
        )
        bits = fields.reshape(-1)
    else:
        width = rank_bits(K, M)
        steps: list[np.ndarray] = []
        for t in range(T):
            order = np.argsort(indices[t], kind="stable")
            chosen = indices[t][order]
            if np.any(np.diff(chosen) == 0):
                raise ValueError(f"turbo indices must be distinct within a step (step {t})")
            rank = combination_rank([int(v) for v in chosen], K)
            steps.append(_int_to_bits(rank, width))
            steps.append(sign_bits[t][order])
        bits = np.concatenate(steps) if steps else np.zeros(0, dtype=np.uint8)
    return np.packbits(bits.astype(np.uint8).reshape(-1)).tobytes()


def unpack_many(
    method: Method, K: int, M: int, T: int, payloads: Sequence[bytes]
) -> tuple[np.ndarray, np.ndarray]:
    """Unpack B payloads at once: (indices int64 [B, T, M], signs int8 [B, T, M] of +1/-1).

    Never raises for any payload contents or lengths (see ``unpack``).
    """
    n_bits = stream_bits(method, K, M, T)
    B = len(payloads)
    bits = np.zeros((B, n_bits), dtype=np.uint8)
    for b, payload in enumerate(payloads):
        bits[b] = _payload_bits(payload, n_bits)

    if method == "ddcm":
        indices = _uint_fields(bits.reshape(B, T, M, index_bits(K))) % K
        signs = np.ones((B, T, M), dtype=np.int8)
    elif method == "robust":
        fields = bits.reshape(B, T, M, index_bits(K) + 1)
        indices = _uint_fields(fields[..., :-1]) % K
        signs = np.where(fields[..., -1] == 1, 1, -1).astype(np.int8)
    else:
        width = rank_bits(K, M)
        steps = bits.reshape(B, T, width + M)
        indices = np.zeros((B, T, M), dtype=np.int64)
        for b in range(B):
            for t in range(T):
                indices[b, t] = combination_unrank(_bits_to_int(steps[b, t, :width]), K, M)
        signs = np.where(steps[..., width:] == 1, 1, -1).astype(np.int8)
    return indices.astype(np.int64), signs


def unpack(method: Method, K: int, M: int, T: int, payload: bytes) -> tuple[np.ndarray, np.ndarray]:
    """Unpack one stream: (indices int64 [T, M], signs int8 [T, M] of +1/-1).

    Never raises for any payload: a short payload reads missing bits as zeros, extra bytes are
    ignored, a turbo rank >= C(K, M) is reduced modulo C(K, M) and an index >= K modulo K.
    Robust indices may then repeat; they are returned as they are. Ddcm signs are all +1.
    """
    indices, signs = unpack_many(method, K, M, T, [payload])
    return indices[0], signs[0]
