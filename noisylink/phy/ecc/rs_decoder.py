"""Batched errors-and-erasures decoder for RS(255, k) over GF(256), any ``k`` in [1, 254].

Same code as commpy's ``ReedSolomonCode(8, k)``: field polynomial ``x^8+x^4+x^3+x^2+1``
(0x11D), primitive element ``alpha = 2``, generator roots ``alpha^1 .. alpha^(n-k)`` (first
consecutive root 1), byte ``i`` of a word is the coefficient of ``x^i`` (so commpy's layout,
parity bytes then message bytes, needs no reordering). commpy decodes one word at a time in
Python (milliseconds per word), and its errors-only decoder uses only ``2t`` of the ``n - k``
syndromes; here all ``d = n - k`` syndromes are used, so ``2 * errors + erasures <= d`` is
corrected for odd ``d`` too.

Per word: syndromes; if all are zero the word is kept (``ok`` unless more than ``d`` bytes
are erased). Otherwise the erasure locator ``Gamma(x) = prod (1 + alpha^i x)`` seeds the
errors-and-erasures Berlekamp-Massey algorithm (``Lambda = B = Gamma``, ``L = f`` erasures,
steps ``r = f+1 .. d``, length change when ``2L <= r + f - 1``), a Chien search finds the
roots ``alpha^-i`` of ``Lambda`` and Forney's formula ``Y = Omega(X^-1) / Lambda'(X^-1)``,
``Omega = S Lambda mod x^d``, gives the magnitudes. A word is corrected (``ok``) only when
``deg Lambda = L``, ``Lambda`` has ``L`` roots, ``2L - f <= d`` and the corrected word has
zero syndromes; otherwise it is returned unchanged with ``ok`` False.

Backends, with identical results: ``decode_numba`` (CPU, words in parallel with ``prange``)
and ``decode_torch`` (any torch device; every step vectorised over the batch, the
Berlekamp-Massey loop runs its fixed ``d`` steps with masks). ``llr_to_bytes`` turns LLRs into
hard bytes and erasure flags for both.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numba
import numpy as np
from numpy.typing import ArrayLike, NDArray

if TYPE_CHECKING:
    import torch

N = 255  # code length in bytes
TORCH_CHUNK = 1 << 14  # words per torch step (bounds device memory at a few hundred MB)
FIELD_POLY = 0x11D  # commpy's GF(256): the smallest primitive polynomial of degree 8

Int64s = NDArray[np.int64]
Bytes = NDArray[np.uint8]
Flags = NDArray[np.bool_]


@functools.cache
def gf_tables() -> tuple[Int64s, Int64s]:
    """``(exp, log)``: ``exp[i] = alpha^(i mod 255)`` for i < 512 (sums of two logs need no
    reduction), ``log[alpha^i] = i`` (``log[0] = 0`` is never used unmasked)."""
    exp = np.zeros(2 * 256, dtype=np.int64)
    value = 1
    for i in range(N):
        exp[i] = value
        value <<= 1
        if value & 0x100:
            value ^= FIELD_POLY
    exp[N : 2 * N] = exp[:N]
    exp[2 * N :] = exp[: 512 - 2 * N]
    log = np.zeros(256, dtype=np.int64)
    log[exp[:N]] = np.arange(N)
    exp.setflags(write=False)
    log.setflags(write=False)
    return exp, log


def _check_k(k: int) -> int:
    if not 1 <= k < N:
        raise ValueError(f"k must be in [1, {N - 1}], got {k}")
    return N - k


# --- LLRs to bytes ----------------------------------------------------------------------------


@numba.njit(cache=True, parallel=True)
def _llr_kernel(llr: NDArray[np.floating], words: Bytes, erased: Flags) -> None:
    for b in numba.prange(llr.shape[0]):
        row = llr[b]
        # first a branch-free (SIMD) pass over the bits, then the packing into bytes
        negative = np.empty(8 * N, dtype=np.uint8)
        decided = np.empty(8 * N, dtype=np.uint8)
        for t in range(8 * N):
            x = row[t]
            negative[t] = x < 0
            decided[t] = (x < 0) | (x > 0)  # false for 0 and NaN: erased
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
    both ``[B, 255]``, from ``B * 2040`` LLRs; one pass instead of several numpy passes."""
    values = np.asarray(llr)
    if values.dtype not in (np.float32, np.float64):
        values = values.astype(np.float64)
    values = np.ascontiguousarray(values.reshape(-1, 8 * N))
    words = np.empty((values.shape[0], N), dtype=np.uint8)
    erased = np.empty((values.shape[0], N), dtype=np.bool_)
    _llr_kernel(values, words, erased)
    return words, erased


# --- numba decoder ----------------------------------------------------------------------------


@numba.njit(cache=True, inline="always")
def _mul(a: int, b: int, exp: Int64s, log: Int64s) -> int:
    if a == 0 or b == 0:
        return 0
    return exp[log[a] + log[b]]


@functools.lru_cache(maxsize=32)
def syndrome_table(k: int) -> NDArray[np.uint64]:
    """``[255, 32, W]`` words: the syndromes ``S_1 .. S_d`` (as ``d`` bytes, zero-padded to
    ``W = ceil(d / 8)`` native uint64) of nibble ``v`` (rows 0-15: ``v``, 16-31: ``v << 4``)
    at byte position ``i``. Syndromes are GF(2)-linear, so a word's are the XOR of two rows
    per nonzero byte: ``W`` 64-bit XORs instead of ``d`` table multiplications."""
    d = _check_k(k)
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


def _as_batch(words: ArrayLike, erased: ArrayLike | None) -> tuple[NDArray, NDArray]:
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
    d = _check_k(k)
    w, e = _as_batch(words, erased)
    exp, log = gf_tables()
    out = np.empty_like(w)
    ok = np.zeros(w.shape[0], dtype=np.bool_)
    _decode_kernel(w, e, d, exp, log, syndrome_table(k), out, ok)
    return out, ok


def syndromes_numba(words: ArrayLike, k: int) -> Int64s:
    """Syndromes ``[B, 255 - k]`` (``S_j = r(alpha^j)``) of byte words ``[B, 255]``."""
    d = _check_k(k)
    w, _ = _as_batch(words, None)
    table = syndrome_table(k)
    acc = np.empty((w.shape[0], table.shape[2]), dtype=np.uint64)
    _syndromes_kernel(w, table, acc)
    return acc.view(np.uint8)[:, :d].astype(np.int64)


# --- torch decoder ----------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class _TorchTables:
    """Field and code tables on one device."""

    d: int
    exp: torch.Tensor  # [512]
    log: torch.Tensor  # [256]
    syndrome_bits: torch.Tensor  # [2040, 8d] float: bit q of byte i -> bit p of S_j
    bm_index: torch.Tensor  # [d, d+1]: syndrome index r-1-i of Lambda_i at step r (d: none)


@functools.lru_cache(maxsize=32)
def _torch_tables(k: int, device: torch.device) -> _TorchTables:
    import torch

    d = _check_k(k)
    exp, log = gf_tables()
    i = np.arange(N)
    q = np.arange(8)
    j = np.arange(1, d + 1)
    # bit q of byte i contributes alpha^q * alpha^(i j) to S_j
    contribution = exp[(q[None, :, None] + i[:, None, None] * j[None, None, :]) % N]
    bits = (contribution[..., None] >> np.arange(8)) & 1  # [i, q, j, p]
    m = np.arange(d + 1)
    r = np.arange(1, d + 1)
    index = r[:, None] - 1 - m[None, :]
    index[(index < 0) | (index >= d)] = d

    def put(array: NDArray, dtype: torch.dtype = torch.int64) -> torch.Tensor:
        return torch.tensor(np.ascontiguousarray(array), dtype=dtype, device=device)

    return _TorchTables(
        d=d,
        exp=put(exp),
        log=put(log),
        syndrome_bits=put(bits.reshape(8 * N, 8 * d), torch.float32),
        bm_index=put(index),
    )


def _gf_mul(tab: _TorchTables, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    import torch

    product = tab.exp[tab.log[a] + tab.log[b]]
    return torch.where((a == 0) | (b == 0), 0, product)


def _gf_div(tab: _TorchTables, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """``a / b`` (0 where ``a`` or ``b`` is 0)."""
    import torch

    quotient = tab.exp[tab.log[a] + N - tab.log[b]]
    return torch.where((a == 0) | (b == 0), 0, quotient)


def _xor_reduce(x: torch.Tensor) -> torch.Tensor:
    """XOR over the last axis (folded in halves; torch has no XOR reduction)."""
    import torch.nn.functional as F  # noqa: N812

    width = x.shape[-1]
    size = 1 << max(width - 1, 0).bit_length()
    if size != width:
        x = F.pad(x, (0, size - width))
    while x.shape[-1] > 1:
        half = x.shape[-1] // 2
        x = x[..., :half] ^ x[..., half:]
    return x[..., 0]


def _shift_up(x: torch.Tensor) -> torch.Tensor:
    """Multiply polynomials (coefficients on the last axis, fixed width) by ``x``."""
    import torch.nn.functional as F  # noqa: N812

    return F.pad(x[..., :-1], (1, 0))


def _syndromes_torch(tab: _TorchTables, words: torch.Tensor) -> torch.Tensor:
    """Syndromes ``[B, d]`` of int64 words ``[B, 255]``: GF(2)-linear in the word's bits, so
    one exact float matmul (counts <= 2040) and a parity."""
    import torch

    shifts = torch.arange(8, device=words.device)
    bits = ((words.to(torch.uint8)[..., None] >> shifts.to(torch.uint8)) & 1).reshape(-1, 8 * N)
    counts = bits.to(torch.float32) @ tab.syndrome_bits
    parity = counts.to(torch.int64).reshape(words.shape[0], tab.d, 8) & 1
    return (parity << shifts).sum(-1)


def _eval_at(tab: _TorchTables, coeffs: torch.Tensor, positions: torch.Tensor) -> torch.Tensor:
    """``poly(alpha^-p)`` for polynomials ``[B, m]`` at positions ``[B, P]`` or ``[P]``."""
    import torch

    acc = torch.zeros(
        (coeffs.shape[0], positions.shape[-1]), dtype=torch.int64, device=coeffs.device
    )
    for m in range(coeffs.shape[1]):
        c = coeffs[:, m : m + 1]
        power = (N - (positions * m) % N) % N
        acc ^= torch.where(c != 0, tab.exp[tab.log[c] + power], 0)
    return acc


def _correct_torch(
    tab: _TorchTables, words: torch.Tensor, erased: torch.Tensor, f: torch.Tensor, s: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """Errors-and-erasures decoding of words with nonzero syndromes and ``f <= d``."""
    import torch

    d = tab.d
    batch = words.shape[0]
    device = words.device
    # erasure locator from the erased positions, listed first in ascending order
    order = torch.argsort((~erased).to(torch.uint8), dim=1, stable=True)[:, :d]
    lam = torch.zeros((batch, d + 1), dtype=torch.int64, device=device)
    lam[:, 0] = 1
    for slot in range(int(f.max())):
        x = tab.exp[order[:, slot : slot + 1]]
        grown = lam ^ _gf_mul(tab, _shift_up(lam), x)
        lam = torch.where((slot < f)[:, None], grown, lam)

    # Berlekamp-Massey, all words in step; a word starts at r = f + 1
    bp = lam.clone()
    big_l = f.clone()
    s_padded = torch.cat([s, torch.zeros_like(s[:, :1])], dim=1)
    for r in range(1, d + 1):
        active = r > f
        delta = _xor_reduce(_gf_mul(tab, lam, s_padded[:, tab.bm_index[r - 1]]))
        xb = _shift_up(bp)
        step = active & (delta != 0)
        grow = step & (2 * big_l <= r + f - 1)
        updated = lam ^ _gf_mul(tab, delta[:, None], xb)
        inv = tab.exp[N - tab.log[delta]]
        scaled = _gf_mul(tab, lam, inv[:, None])
        bp = torch.where(grow[:, None], scaled, torch.where(active[:, None], xb, bp))
        big_l = torch.where(grow, r + f - big_l, big_l)
        lam = torch.where(step[:, None], updated, lam)

    powers = torch.arange(d + 1, device=device)
    deg = torch.where(lam != 0, powers, 0).amax(dim=1)
    roots = _eval_at(tab, lam, torch.arange(N, device=device)) == 0  # Chien search
    n_roots = roots.sum(dim=1)

    # Forney at the (at most d) roots, gathered first
    where = torch.argsort((~roots).to(torch.uint8), dim=1, stable=True)[:, :d]
    valid = powers[None, :d] < n_roots[:, None]
    omega = torch.zeros_like(s)
    for a in range(d):
        omega[:, a:] ^= _gf_mul(tab, lam[:, a : a + 1], s[:, : d - a])
    deriv = torch.zeros_like(s)
    deriv[:, 0::2] = lam[:, 1::2]
    num = _eval_at(tab, omega, where)
    den = _eval_at(tab, deriv, where)
    mags = torch.where(valid, _gf_div(tab, num, den), 0)
    errors = torch.zeros_like(words).scatter_(1, where, mags)
    corrected = words ^ errors

    good = (deg == big_l) & (n_roots == big_l) & (2 * big_l - f <= d)
    good &= ~(valid & (den == 0)).any(dim=1)
    good &= (_syndromes_torch(tab, corrected) == 0).all(dim=1)
    return torch.where(good[:, None], corrected, words), good


def decode_torch(
    words: torch.Tensor, erased: torch.Tensor | None, k: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """``decode_numba`` on torch tensors (any device): byte words ``[B, 255]`` and erasure
    flags ``[B, 255]`` (None: none); returns ``(uint8 words, bool ok)`` on the same device."""
    import torch

    _check_k(k)
    if words.ndim != 2 or words.shape[1] != N:
        raise ValueError(f"words must have shape [B, {N}], got {tuple(words.shape)}")
    w = words.to(torch.int64)
    if bool(((w < 0) | (w > 255)).any()):
        raise ValueError("words must hold bytes (0 .. 255)")
    e = torch.zeros_like(w, dtype=torch.bool) if erased is None else erased.to(torch.bool)
    if e.shape != w.shape:
        raise ValueError(f"erased must have shape {tuple(w.shape)}, got {tuple(e.shape)}")
    tab = _torch_tables(k, w.device)
    out = w.to(torch.uint8)
    ok = torch.zeros(w.shape[0], dtype=torch.bool, device=w.device)
    for start in range(0, w.shape[0], TORCH_CHUNK):
        part, part_erased = w[start : start + TORCH_CHUNK], e[start : start + TORCH_CHUNK]
        f = part_erased.sum(dim=1)
        s = _syndromes_torch(tab, part)
        clean = (s == 0).all(dim=1)
        ok[start : start + TORCH_CHUNK] = clean & (f <= tab.d)
        todo = torch.nonzero(~clean & (f <= tab.d)).squeeze(1)
        if todo.numel():
            fixed, good = _correct_torch(tab, part[todo], part_erased[todo], f[todo], s[todo])
            out[start + todo] = fixed.to(torch.uint8)
            ok[start + todo] = good
    return out, ok
