"""The batched RS(255, k) errors-and-erasures decoder of ``numba.py`` on any torch device.

Identical results to ``decode_numba`` (whose docstring states the algorithm): every step is
vectorised over the batch, and the Berlekamp-Massey loop runs its fixed ``d`` steps with
masks. Words: bytes ``[B, 255]``, erasure flags ``[B, 255]``; bad shapes, values or ``k``
raise ``ValueError``. Imported only when the torch backend is chosen.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F  # noqa: N812
from numpy.typing import NDArray

from noisylink.phy.ecc.backends import torch_device
from noisylink.phy.ecc.reed_solomon.field import N, check_k, gf_tables

TORCH_CHUNK = 1 << 14  # words per torch step (bounds device memory at a few hundred MB)


def decode_on_device(
    words: NDArray[np.uint8], erased: NDArray[np.bool_], k: int
) -> tuple[NDArray[np.uint8], NDArray[np.bool_]]:
    """``decode_torch`` on ``torch_device()`` for numpy words and flags, results as numpy."""
    device = torch_device()
    decoded, ok = decode_torch(
        torch.from_numpy(words).to(device), torch.from_numpy(erased).to(device), k
    )
    return decoded.cpu().numpy(), ok.cpu().numpy()


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
    d = check_k(k)
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

    def put(array: NDArray[np.generic], dtype: torch.dtype = torch.int64) -> torch.Tensor:
        return torch.tensor(np.ascontiguousarray(array), dtype=dtype, device=device)

    return _TorchTables(
        d=d,
        exp=put(exp),
        log=put(log),
        syndrome_bits=put(bits.reshape(8 * N, 8 * d), torch.float32),
        bm_index=put(index),
    )


# mirrors _mul (numba.py)
def _gf_mul(tab: _TorchTables, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    product = tab.exp[tab.log[a] + tab.log[b]]
    return torch.where((a == 0) | (b == 0), 0, product)


def _gf_div(tab: _TorchTables, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """``a / b`` (0 where ``a`` or ``b`` is 0)."""
    quotient = tab.exp[tab.log[a] + N - tab.log[b]]
    return torch.where((a == 0) | (b == 0), 0, quotient)


def _xor_reduce(x: torch.Tensor) -> torch.Tensor:
    """XOR over the last axis (folded in halves; torch has no XOR reduction)."""
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
    return F.pad(x[..., :-1], (1, 0))


# mirrors _syndromes_into, for a batch (numba.py)
def _syndromes_torch(tab: _TorchTables, words: torch.Tensor) -> torch.Tensor:
    """Syndromes ``[B, d]`` of int64 words ``[B, 255]``: GF(2)-linear in the word's bits, so
    one exact float matmul (counts <= 2040) and a parity."""
    shifts = torch.arange(8, device=words.device)
    bits = ((words.to(torch.uint8)[..., None] >> shifts.to(torch.uint8)) & 1).reshape(-1, 8 * N)
    counts = bits.to(torch.float32) @ tab.syndrome_bits
    parity = counts.to(torch.int64).reshape(words.shape[0], tab.d, 8) & 1
    return (parity << shifts).sum(-1)


def _eval_at(tab: _TorchTables, coeffs: torch.Tensor, positions: torch.Tensor) -> torch.Tensor:
    """``poly(alpha^-p)`` for polynomials ``[B, m]`` at positions ``[B, P]`` or ``[P]``."""
    acc = torch.zeros(
        (coeffs.shape[0], positions.shape[-1]), dtype=torch.int64, device=coeffs.device
    )
    for m in range(coeffs.shape[1]):
        c = coeffs[:, m : m + 1]
        power = (N - (positions * m) % N) % N
        acc ^= torch.where(c != 0, tab.exp[tab.log[c] + power], 0)
    return acc


# mirrors _decode_word (after its syndrome and erasure checks), for a batch (numba.py)
def _correct_torch(
    tab: _TorchTables, words: torch.Tensor, erased: torch.Tensor, f: torch.Tensor, s: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """Errors-and-erasures decoding of words with nonzero syndromes and ``f <= d``."""
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


# mirrors decode_numba (numba.py)
def decode_torch(
    words: torch.Tensor, erased: torch.Tensor | None, k: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """``decode_numba`` on torch tensors (any device): byte words ``[B, 255]`` and erasure
    flags ``[B, 255]`` (None: none); returns ``(uint8 words, bool ok)`` on the same device."""
    check_k(k)
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
