"""Batched RS(255, k) errors-and-erasures decoder: corrects every 2e + f <= n - k pattern,
agrees with commpy where commpy runs the same algorithm, fails safely beyond capacity, torch ==
numba, never raises on garbage, and is wired into ``ReedSolomon`` behind ``backend``."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from commpy import ReedSolomonCode
from hypothesis import given, settings
from hypothesis import strategies as st

from noisylink.errors import ScenarioError
from noisylink.phy.ecc import ECCS
from noisylink.phy.ecc.reed_solomon.code import ReedSolomon, rs_encode_blocks, rs_syndromes
from noisylink.phy.ecc.reed_solomon.field import gf_tables
from noisylink.phy.ecc.reed_solomon.numba import decode_numba, llr_to_bytes, syndromes_numba
from noisylink.phy.ecc.reed_solomon.torch import decode_torch

N = 255
# n - k = 32 (CCSDS), 16, 64, 33 and 3 (odd: commpy's errors-only decoder drops a syndrome)
KS = [223, 239, 191, 222, 252]

Words = np.ndarray


def codewords(k: int, count: int, rng: np.random.Generator) -> Words:
    return rs_encode_blocks(k, rng.integers(0, 256, (count, k))).astype(np.uint8)


def corrupt(
    sent: Words, patterns: list[tuple[int, int]], rng: np.random.Generator
) -> tuple[Words, np.ndarray]:
    """Row b gets ``e`` byte errors (nonzero XOR) and ``f`` erasures (random bytes, which may
    happen to be right) at distinct random positions, ``(e, f) = patterns[b]``."""
    received = sent.copy()
    erased = np.zeros(sent.shape, dtype=bool)
    for row, (e, f) in enumerate(patterns):
        where = rng.choice(N, e + f, replace=False)
        received[row, where[:e]] ^= rng.integers(1, 256, e).astype(np.uint8)
        received[row, where[e:]] = rng.integers(0, 256, f)
        erased[row, where[e:]] = True
    return received, erased


def within_capacity(d: int) -> list[tuple[int, int]]:
    """Every (e, f) with 2e + f <= d for small d, else a grid including the boundary."""
    if d <= 40:
        return [(e, f) for e in range(d // 2 + 1) for f in range(d - 2 * e + 1)]
    errors = sorted({round(x) for x in np.linspace(0, d // 2, 7)})
    return [
        (e, f)
        for e in errors
        for f in sorted({0, 1, (d - 2 * e) // 2, d - 2 * e})
        if 2 * e + f <= d
    ]


def beyond_capacity(d: int) -> list[tuple[int, int]]:
    pairs = []
    for f in sorted({0, 1, d // 2, d - 1, d, d + 1, d + 4}):
        for excess in (1, 2, 5):
            e = max(0, (d - f + excess + 1) // 2)
            if 2 * e + f > d and e + f <= N:
                pairs.append((e, f))
    return pairs


def decode_both(received: Words, erased: np.ndarray, k: int) -> tuple[Words, np.ndarray]:
    """numba's answer, after checking that torch (CPU tensors) gives exactly the same."""
    words, ok = decode_numba(received, erased, k)
    words_t, ok_t = decode_torch(torch.from_numpy(received), torch.from_numpy(erased), k)
    np.testing.assert_array_equal(words_t.numpy(), words)
    np.testing.assert_array_equal(ok_t.numpy(), ok)
    return words, ok


def is_codeword(k: int, words: Words) -> np.ndarray:
    return ~rs_syndromes(k, words.astype(np.int64)).any(axis=1)


# --- field, syndromes, LLR packing ----------------------------------------------------------


def test_field_and_syndromes_match_commpy():
    exp, log = gf_tables()
    field = ReedSolomonCode(8, 223).field
    np.testing.assert_array_equal(exp[:N], field.exp(np.arange(N)))
    np.testing.assert_array_equal(exp[N : 2 * N], exp[:N])
    np.testing.assert_array_equal(log[exp[:N]], np.arange(N))
    rng = np.random.default_rng(20)
    for k in [1, *KS, 254]:
        words = rng.integers(0, 256, (3, N)).astype(np.uint8)
        np.testing.assert_array_equal(
            syndromes_numba(words, k), rs_syndromes(k, words.astype(np.int64))
        )


def test_llr_to_bytes_hard_decision_and_erasures():
    rng = np.random.default_rng(21)
    llr = rng.standard_normal((3, N, 8)) * 4.0
    llr[0, 5, 3] = 0.0
    llr[1, 7, 0] = np.nan
    llr[2, 9, 7] = -0.0
    llr[2, 10] = [np.inf, -np.inf, 1e-300, -1e-300, 5.0, -5.0, 1.0, -1.0]
    words, erased = llr_to_bytes(llr.reshape(-1))
    expected = np.packbits(np.nan_to_num(llr, nan=0.0) < 0, axis=2)[:, :, 0]
    np.testing.assert_array_equal(words, expected)
    assert words[2, 10] == 0b01010101
    assert set(zip(*np.nonzero(erased), strict=True)) == {(0, 5), (1, 7), (2, 9)}
    words32, erased32 = llr_to_bytes(llr.astype(np.float32))
    np.testing.assert_array_equal(words32[:2], words[:2])
    np.testing.assert_array_equal(erased32[:2], erased[:2])


# --- correction, agreement, failure ---------------------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize("k", KS)
def test_corrects_every_pattern_within_capacity(k: int):
    rng = np.random.default_rng(k)
    patterns = within_capacity(N - k) * 2
    sent = codewords(k, len(patterns), rng)
    received, erased = corrupt(sent, patterns, rng)
    decoded, ok = decode_both(received, erased, k)
    assert ok.all()
    np.testing.assert_array_equal(decoded, sent)


@pytest.mark.parametrize("k", KS)
def test_beyond_capacity_fails_or_returns_a_codeword(k: int):
    rng = np.random.default_rng(100 + k)
    patterns = beyond_capacity(N - k) * 3
    sent = codewords(k, len(patterns), rng)
    received, erased = corrupt(sent, patterns, rng)
    decoded, ok = decode_both(received, erased, k)
    assert is_codeword(k, decoded[ok]).all()
    np.testing.assert_array_equal(decoded[~ok], received[~ok])
    too_many_erasures = erased.sum(axis=1) > N - k
    assert not ok[too_many_erasures].any()
    if k == 223:  # 17 .. 19 errors, no erasures: a miscorrection is astronomically unlikely
        assert not ok[[e > 16 and f == 0 for e, f in patterns]].any()


@pytest.mark.parametrize("k", [223, 239])
def test_matches_commpy_where_it_runs_the_same_algorithm(k: int):
    """Even n - k, errors only (commpy ``decode``) or erasures only (``decode_erasures``)."""
    rng = np.random.default_rng(30 + k)
    code = ReedSolomonCode(8, k)
    t = (N - k) // 2
    errors = [(e, 0) for e in (1, t // 2, t)]
    sent = codewords(k, 5, rng)
    received, erased = corrupt(sent, [*errors, (0, N - k), (0, 3)], rng)
    decoded, ok = decode_both(received, erased, k)
    assert ok.all()
    for row in range(3):
        np.testing.assert_array_equal(decoded[row], code.decode(received[row])[1])
    for row in (3, 4):
        expected = code.decode_erasures(received[row], np.nonzero(erased[row])[0])[1]
        np.testing.assert_array_equal(decoded[row], expected)


def test_odd_redundancy_uses_every_syndrome():
    """n - k = 33: 16 errors and 1 erasure is within capacity (33 syndromes needed)."""
    rng = np.random.default_rng(31)
    sent = codewords(222, 4, rng)
    received, erased = corrupt(sent, [(16, 1)] * 4, rng)
    decoded, ok = decode_both(received, erased, 222)
    assert ok.all()
    np.testing.assert_array_equal(decoded, sent)


def test_clean_words_and_erasure_limit():
    rng = np.random.default_rng(32)
    sent = codewords(223, 3, rng)
    erased = np.zeros(sent.shape, dtype=bool)
    erased[1, :32] = True  # right bytes marked erased: still a codeword
    erased[2, :33] = True  # more erasures than n - k: refused even though the word is right
    decoded, ok = decode_both(sent, erased, 223)
    np.testing.assert_array_equal(ok, [True, True, False])
    np.testing.assert_array_equal(decoded, sent)
    empty, ok_empty = decode_numba(np.zeros((0, N), np.uint8), None, 223)
    assert empty.shape == (0, N) and ok_empty.shape == (0,)


def test_bad_shapes_and_k_are_value_errors():
    with pytest.raises(ValueError):
        decode_numba(np.zeros((2, 254), np.uint8), None, 223)
    with pytest.raises(ValueError):
        decode_numba(np.zeros((2, N), np.uint8), np.zeros((2, 3), bool), 223)
    with pytest.raises(ValueError):
        decode_numba(np.full((1, N), 256), None, 223)
    with pytest.raises(ValueError):
        decode_torch(torch.zeros((1, N), dtype=torch.uint8), None, 255)


@pytest.mark.slow
@settings(max_examples=200, deadline=None)
@given(
    seed=st.integers(0, 2**32 - 1),
    k=st.sampled_from([223, 222, 239, 252, 254, 128, 1]),
    rows=st.integers(1, 6),
    garbage=st.booleans(),
    n_errors=st.integers(0, 40),
    erasure_rate=st.sampled_from([0.0, 0.01, 0.05, 0.2, 1.0]),
)
def test_fuzz_never_raises_and_ok_means_codeword(
    seed: int, k: int, rows: int, garbage: bool, n_errors: int, erasure_rate: float
):
    rng = np.random.default_rng(seed)
    if garbage:
        received = rng.integers(0, 256, (rows, N)).astype(np.uint8)
    else:
        received, _ = corrupt(codewords(k, rows, rng), [(n_errors, 0)] * rows, rng)
    erased = rng.random((rows, N)) < erasure_rate
    decoded, ok = decode_both(received, erased, k)
    assert is_codeword(k, decoded[ok]).all()
    np.testing.assert_array_equal(decoded[~ok], received[~ok])


# --- ReedSolomon wiring ---------------------------------------------------------------------


def strong_llr(words: Words) -> np.ndarray:
    """Strong LLRs (positive means 0) for byte words, shape ``[B * 2040]``."""
    return 8.0 * (1.0 - 2.0 * np.unpackbits(words, axis=1).astype(np.float64)).reshape(-1)


def build(**params: object) -> ReedSolomon:
    ecc = ECCS.build(ECCS.config({"name": "rs", **params}))
    assert isinstance(ecc, ReedSolomon)
    return ecc


def test_backend_setting():
    assert ECCS.config({"name": "rs"}).params() == {"k": 223}
    assert ECCS.config({"name": "rs", "backend": "numba"}).params() == {
        "k": 223,
        "backend": "numba",
    }
    assert ECCS.config({"name": "rs", "k": 239, "backend": "torch"}).label() == (
        "rs(k=239,backend=torch)"
    )
    with pytest.raises(ScenarioError):
        ECCS.config({"name": "rs", "backend": "cuda"})
    assert build().backend == ("torch" if torch.cuda.is_available() else "numba")
    assert build(backend="reference").backend == "reference"


def test_backends_agree_through_llrs():
    """Clean, errors-only, erasures-only and hopeless blocks: same bits and flags from numba,
    torch and the commpy reference (a case where all three run the same algorithm)."""
    rng = np.random.default_rng(40)
    k = 223
    sent = codewords(k, 6, rng)
    received, erased = corrupt(sent, [(0, 0), (8, 0), (16, 0), (0, 20), (40, 0), (0, 0)], rng)
    llr = strong_llr(received).reshape(6, N, 8)
    llr[erased, 0] = 0.0
    llr[5, 3, 5] = np.nan  # one erased byte in an otherwise clean block
    results = {
        backend: build(k=k, backend=backend).decode(llr.reshape(-1))
        for backend in ("numba", "torch", "reference")
    }
    bits, ok = results["numba"]
    np.testing.assert_array_equal(ok, [True, True, True, True, False, True])
    np.testing.assert_array_equal(np.packbits(bits).reshape(6, k)[ok], sent[ok, N - k :])
    np.testing.assert_array_equal(np.packbits(bits).reshape(6, k)[4], received[4, N - k :])
    for other in ("torch", "reference"):
        np.testing.assert_array_equal(results[other][0], bits)
        np.testing.assert_array_equal(results[other][1], ok)


@pytest.mark.parametrize("backend", ["numba", "torch"])
def test_errors_and_erasures_together_through_llrs(backend: str):
    """10 errors + 13 erasures (2e + f = 33 = n - k): corrected in one pass, where the commpy
    path (erasures only, then errors only) cannot."""
    rng = np.random.default_rng(41)
    ecc = build(k=222, backend=backend)
    bits = rng.integers(0, 2, 3 * ecc.k).astype(np.uint8)
    sent = np.packbits(ecc.encode(bits).reshape(3, -1), axis=1)
    received, erased = corrupt(sent, [(10, 13)] * 3, rng)
    llr = strong_llr(received).reshape(3, N, 8)
    llr[erased, 7] = 0.0
    decoded, ok = ecc.decode(llr.reshape(-1))
    assert ok.all()
    np.testing.assert_array_equal(decoded, bits)
