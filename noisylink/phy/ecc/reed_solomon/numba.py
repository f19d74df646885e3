"""Batched errors-and-erasures decoder for RS(255, k) over GF(256) on the CPU (numba).

Same code as commpy's ``ReedSolomonCode(8, k)``, any ``k`` in [1, 254]: field ``field.py``,
generator roots ``alpha^1 .. alpha^(n-k)`` (first consecutive root 1), byte ``i`` of a word
is the coefficient of ``x^i`` (so commpy's layout, parity bytes then message bytes, needs no
reordering). commpy decodes one word at a time in Python (milliseconds per word), and its
errors-only decoder uses only ``2t`` of the ``n - k`` syndromes; here all ``d = n - k``
syndromes are used, so ``2 * errors + erasures <= d`` is corrected for odd ``d`` too.

Per word: syndromes; if all are zero the word is kept (``ok`` unless more than ``d`` bytes
are erased). Otherwise the erasure locator ``Gamma(x) = prod (1 + alpha^i x)`` seeds the
errors-and-erasures Berlekamp-Massey algorithm (``Lambda = B = Gamma``, ``L = f`` erasures,
steps ``r = f+1 .. d``, length change when ``2L <= r + f - 1``), a Chien search finds the
roots ``alpha^-i`` of ``Lambda`` and Forney's formula ``Y = Omega(X^-1) / Lambda'(X^-1)``,
``Omega = S Lambda mod x^d``, gives the magnitudes. A word is corrected (``ok``) only when
``deg Lambda = L``, ``Lambda`` has ``L`` roots, ``2L - f <= d`` and the corrected word has
zero syndromes; otherwise it is returned unchanged with ``ok`` False. Words are decoded in
parallel with ``prange``; ``torch.py`` gives identical results on any torch device.

Words: uint8 bytes ``[B, 255]``, erasure flags bool ``[B, 255]``; bad shapes, values or ``k``
raise ``ValueError`` (callers' mistakes, not channel errors). ``llr_to_bytes`` turns LLRs
(positive means 0) into hard bytes and erasure flags for both backends.
"""

from __future__ import annotations

import functools

import numba
import numpy as np
from numpy.typing import ArrayLike, NDArray

from noisylink.phy.ecc.base import clean_value
from noisylink.phy.ecc.reed_solomon.field import Int64s, N, check_k, gf_tables

Bytes = NDArray[np.uint8]
Flags = NDArray[np.bool_]


@numba.njit(cache=True, parallel=True)
def _llr_kernel(llr: NDArray[np.floating], words: Bytes, erased: Flags) -> None:
    for b in numba.prange(llr.shape[0]):
        row = llr[b]
        # first a branch-free (SIMD) pass over the bits, then the packing into bytes
        negative = np.empty(8 * N, dtype=np.uint8)
        decided = np.empty(8 * N, dtype=np.uint8)
        for t in range(8 * N):
            x = clean_value(row[t])  # as clean_llr would give it: NaN -> 0
            negative[t] = x < 0
            decided[t] = x != 0  # false for 0 (and NaN): erased
        for i in range(N):
            value = 0
            sure = 1
            for q in range(8):
                value = (value << 1) | negative[8 * i + q]
                sure &= decided[8 * i + q]
            words[b, i] = value
            erased[b, i] = sure == 0


def llr_to_bytes(llr: ArrayLike) -> tuple[NDArray[np.uint8], NDArray[np.bool_]]:
    """Hard bytes (MSB first, LLR < 0 means 1) and erasure flags (some bit's LLR is 0 or NaN),
    both ``[B, 255]``, from ``B * 2040`` LLRs; one pass instead of several numpy passes, which
    also cleans each LLR (``clean_value``, ``clean_llr``'s rule), so the ``ReedSolomon`` code
    needs no separate cleaning pass (it would cost RS ~15 % of its speed)."""
    values = np.asarray(llr)
    if values.dtype not in (np.float32, np.float64):
        values = values.astype(np.float64)
    values = np.ascontiguousarray(values.reshape(-1, 8 * N))
    words = np.empty((values.shape[0], N), dtype=np.uint8)
    erased = np.empty((values.shape[0], N), dtype=np.bool_)
    _llr_kernel(values, words, erased)
    return words, erased


@numba.njit(cache=True, inline="always")
def _mul(a: int, b: int, exp: Int64s, log: Int64s) -> int:
    if a == 0 or b == 0:
        return 0
    return int(exp[log[a] + log[b]])


@functools.lru_cache(maxsize=32)
def syndrome_table(k: int) -> NDArray[np.uint64]:
    """``[255, 32, W]`` words: the syndromes ``S_1 .. S_d`` (as ``d`` bytes, zero-padded to
    ``W = ceil(d / 8)`` native uint64) of nibble ``v`` (rows 0-15: ``v``, 16-31: ``v << 4``)
    at byte position ``i``. Syndromes are GF(2)-linear, so a word's are the XOR of two rows
    per nonzero byte: ``W`` 64-bit XORs instead of ``d`` table multiplications."""
    d = check_k(k)
    exp, log = gf_tables()
    values = np.concatenate([np.arange(16), np.arange(16) << 4])
    i = np.arange(N)[:, None, None]
    j = np.arange(1, d + 1)[None, None, :]
    power = log[values][None, :, None] + (i * j) % N
    terms = np.where(values[None, :, None] != 0, exp[power], 0)
    padded = np.zeros((N, 32, 8 * ((d + 7) // 8)), dtype=np.uint8)
    padded[..., :d] = terms
    table = np.ascontiguousarray(padded).view(np.uint64)
    table.setflags(write=False)
    return table


@numba.njit(cache=True)
def _syndromes_into(word: Bytes, table: NDArray[np.uint64], acc: NDArray[np.uint64]) -> None:
    """``acc`` (``W`` words, viewed as bytes: ``S_1 .. S_d``, padding 0) for one word."""
    acc[:] = 0
    for i in range(N):
        v = word[i]
        if v != 0:
            lo = table[i, v & 15]
            hi = table[i, 16 + (v >> 4)]
            for w in range(acc.shape[0]):
                acc[w] ^= lo[w] ^ hi[w]


@numba.njit(cache=True)
def _decode_word(
    word: Bytes,
    erased: Flags,
    d: int,
    exp: Int64s,
    log: Int64s,
    table: NDArray[np.uint64],
    out: Bytes,
) -> bool:
    """Decode one word into ``out`` (left equal to ``word`` on failure); True if corrected."""
    out[:] = word
    f = 0
    for i in range(N):
        if erased[i]:
            f += 1
    if f > d:
        return False
    packed = np.empty(table.shape[2], dtype=np.uint64)
    _syndromes_into(word, table, packed)
    clean = True
    for w in range(packed.shape[0]):
        if packed[w] != 0:
            clean = False
    if clean:
        return True
    s = packed.view(np.uint8)[:d].astype(np.int64)

    # erasure locator Gamma(x) = prod over erased i of (1 + alpha^i x)
    lam = np.zeros(d + 1, dtype=np.int64)
    lam[0] = 1
    deg = 0
    for i in range(N):
        if erased[i]:
            x = exp[i]
            for m in range(deg + 1, 0, -1):
                lam[m] ^= _mul(lam[m - 1], x, exp, log)
            deg += 1

    # Berlekamp-Massey seeded with Gamma; deg(x B) <= r and deg(Lambda) <= L <= d throughout
    bp = lam.copy()
    old = np.empty(d + 1, dtype=np.int64)
    big_l = f
    for r in range(f + 1, d + 1):
        delta = 0
        for i in range(min(big_l, r - 1) + 1):
            delta ^= _mul(lam[i], s[r - 1 - i], exp, log)
        for m in range(r, 0, -1):  # x B; coefficients above r are zero
            bp[m] = bp[m - 1]
        bp[0] = 0
        if delta == 0:
            continue
        if 2 * big_l <= r + f - 1:
            old[:] = lam
            for m in range(r + 1):
                lam[m] ^= _mul(delta, bp[m], exp, log)
            inv = exp[N - log[delta]]
            for m in range(r + 1):
                bp[m] = _mul(old[m], inv, exp, log)
            big_l = r + f - big_l
        else:
            for m in range(r + 1):
                lam[m] ^= _mul(delta, bp[m], exp, log)

    deg = 0
    for m in range(d + 1):
        if lam[m] != 0:
            deg = m
    if deg != big_l or 2 * big_l - f > d:
        return False

    # Chien search: position i is in error where Lambda(alpha^-i) = 0; reg[m] holds
    # log(Lambda_m) - i m mod 255 (-1 for a zero coefficient)
    reg = np.empty(big_l + 1, dtype=np.int64)
    for m in range(big_l + 1):
        reg[m] = log[lam[m]] if lam[m] != 0 else -1
    roots = np.empty(big_l, dtype=np.int64)
    n_roots = 0
    for i in range(N):
        value = 0
        for m in range(big_l + 1):
            e = reg[m]
            if e >= 0:
                value ^= exp[e]
                e -= m
                reg[m] = e + N if e < 0 else e
        if value == 0:
            if n_roots == big_l:
                return False
            roots[n_roots] = i
            n_roots += 1
    if n_roots != big_l:
        return False

    # Forney: Omega = S Lambda mod x^d, Y = Omega(X^-1) / Lambda'(X^-1)
    omega = np.zeros(d, dtype=np.int64)
    for m in range(d):
        acc = 0
        for a in range(min(m, big_l) + 1):
            acc ^= _mul(lam[a], s[m - a], exp, log)
        omega[m] = acc
    mags = np.empty(big_l, dtype=np.int64)
    for n in range(big_l):
        p = roots[n]
        num = 0
        for m in range(d):
            c = omega[m]
            if c != 0:
                num ^= exp[log[c] + (N - (p * m) % N)]
        den = 0
        for m in range(1, big_l + 1, 2):
            c = lam[m]
            if c != 0:
                den ^= exp[log[c] + (N - (p * (m - 1)) % N)]
        if den == 0:
            return False
        mags[n] = 0 if num == 0 else exp[log[num] + N - log[den]]

    # the corrected word's syndromes, S_j + sum Y X^j, must all vanish
    for j in range(1, d + 1):
        acc = s[j - 1]
        for n in range(big_l):
            y = mags[n]
            if y != 0:
                acc ^= exp[log[y] + (roots[n] * j) % N]
        if acc != 0:
            return False
    for n in range(big_l):
        out[roots[n]] ^= mags[n]
    return True


@numba.njit(cache=True, parallel=True)
def _decode_kernel(
    words: Bytes,
    erased: Flags,
    d: int,
    exp: Int64s,
    log: Int64s,
    table: NDArray[np.uint64],
    out: Bytes,
    ok: Flags,
) -> None:
    for b in numba.prange(words.shape[0]):
        ok[b] = _decode_word(words[b], erased[b], d, exp, log, table, out[b])


@numba.njit(cache=True, parallel=True)
def _syndromes_kernel(words: Bytes, table: NDArray[np.uint64], out: NDArray[np.uint64]) -> None:
    for b in numba.prange(words.shape[0]):
        _syndromes_into(words[b], table, out[b])


def _as_batch(words: ArrayLike, erased: ArrayLike | None) -> tuple[Bytes, Flags]:
    w = np.asarray(words)
    if w.ndim != 2 or w.shape[1] != N:
        raise ValueError(f"words must have shape [B, {N}], got {w.shape}")
    if np.any((w < 0) | (w > 255)):
        raise ValueError("words must hold bytes (0 .. 255)")
    e = np.zeros(w.shape, dtype=np.bool_) if erased is None else np.asarray(erased, dtype=bool)
    if e.shape != w.shape:
        raise ValueError(f"erased must have shape {w.shape}, got {e.shape}")
    return np.ascontiguousarray(w, dtype=np.uint8), np.ascontiguousarray(e)


def decode_numba(
    words: ArrayLike, erased: ArrayLike | None, k: int
) -> tuple[NDArray[np.uint8], NDArray[np.bool_]]:
    """Decode byte words ``[B, 255]`` with erasure flags ``[B, 255]`` (None: no erasures).

    Returns ``(decoded words, ok)``: ok words are verified codewords, the others unchanged.
    """
    d = check_k(k)
    w, e = _as_batch(words, erased)
    exp, log = gf_tables()
    out = np.empty_like(w)
    ok = np.zeros(w.shape[0], dtype=np.bool_)
    _decode_kernel(w, e, d, exp, log, syndrome_table(k), out, ok)
    return out, ok


def syndromes_numba(words: ArrayLike, k: int) -> Int64s:
    """Syndromes ``[B, 255 - k]`` (``S_j = r(alpha^j)``) of byte words ``[B, 255]``."""
    d = check_k(k)
    w, _ = _as_batch(words, None)
    table = syndrome_table(k)
    acc = np.empty((w.shape[0], table.shape[2]), dtype=np.uint64)
    _syndromes_kernel(w, table, acc)
    return acc.view(np.uint8)[:, :d].astype(np.int64)
