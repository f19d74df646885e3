"""Batched convolutional encoder and Viterbi decoders (numba, torch) against commpy's."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import numba
import numpy as np
import pytest
import torch
from commpy import ConvolutionalEncoder, Trellis, viterbi_decode

from noisylink.errors import ScenarioError
from noisylink.phy.ecc import ECCS
from noisylink.phy.ecc.base import LLR_LIMIT, clean_llr
from noisylink.phy.ecc.convolutional import numba as conv_numba
from noisylink.phy.ecc.convolutional import torch as conv_torch
from noisylink.phy.ecc.convolutional.code import encode_blocks, k7_trellis
from noisylink.phy.ecc.convolutional.lanes import (
    LANES,
    acs_lanes,
    butterfly_lanes,
    load_llr_lanes,
    pattern_gains_lanes,
)
from noisylink.phy.ecc.convolutional.numba import viterbi_decode_numba
from noisylink.phy.ecc.convolutional.torch import viterbi_decode_torch
from noisylink.phy.ecc.convolutional.trellis import (
    TrellisTables,
    shift_register_trellis,
    trellis_tables,
)

K7 = (7, (0o171, 0o133))
OTHER_CODES = [(3, (0o7, 0o5)), (5, (0o25, 0o33, 0o37)), (4, (0o17,)), (9, (0o561, 0o753))]


def awgn_llr(coded: np.ndarray, ebn0_db: float, rate: float, rng: np.random.Generator):
    """BPSK (0 -> +1) over AWGN at Eb/N0, exact LLRs 2y/sigma^2."""
    sigma = np.sqrt(1.0 / (2.0 * rate * 10.0 ** (ebn0_db / 10.0)))
    y = 1.0 - 2.0 * coded + sigma * rng.standard_normal(coded.shape)
    return 2.0 * y / sigma**2


def commpy_decode(trellis: Any, llr: np.ndarray) -> np.ndarray:
    return np.array([viterbi_decode(trellis, row, mode="soft") for row in llr], dtype=np.uint8)


def both_decoders(tables: TrellisTables, llr: np.ndarray) -> np.ndarray:
    """Numba's decisions, after checking torch (on CPU tensors) makes the same ones."""
    numba_bits = viterbi_decode_numba(tables, llr)
    torch_bits = viterbi_decode_torch(tables, torch.from_numpy(llr))
    assert torch_bits.dtype == torch.uint8
    np.testing.assert_array_equal(torch_bits.numpy(), numba_bits)
    return numba_bits


def coded_blocks(tables: TrellisTables, blocks: int, k: int, seed: int):
    bits = np.random.default_rng(seed).integers(0, 2, (blocks, k)).astype(np.uint8)
    return bits, encode_blocks(tables, bits)


# --- tables and encoder ---------------------------------------------------------------------


@pytest.mark.parametrize(("constraint_length", "generators"), [K7, *OTHER_CODES])
def test_tables_match_commpy_trellis(constraint_length: int, generators: tuple[int, ...]):
    ours = shift_register_trellis(constraint_length, generators)
    theirs = Trellis(constraint_length, list(generators))
    np.testing.assert_array_equal(ours.next_state, theirs.next_state)
    np.testing.assert_array_equal(ours.output_bits, theirs.output_bits)
    assert (ours.n_states, ours.n_outputs, ours.memory) == (
        theirs.n_states,
        theirs.n_outputs,
        theirs.memory,
    )
    assert ours.butterfly
    # every branch appears once among the predecessors, with its own output pattern
    for ns in range(ours.n_states):
        for d in range(2):
            s, u = ours.pred_state[ns, d], ours.pred_input[ns, d]
            assert ours.next_state[s, u] == ns
            bits = ours.output_bits[s, u]
            signs = ours.pattern_signs[ours.pred_pattern[ns, d]]
            np.testing.assert_array_equal(signs, 1.0 - 2.0 * bits)
        assert tuple(ours.pred_state[ns]) <= tuple(ours.pred_state[ns][::-1])  # tie winner first


def test_bad_tables_are_rejected():
    tables = k7_trellis()
    with pytest.raises(ValueError):
        trellis_tables(tables.next_state[:48], tables.output_bits[:48])  # not a power of two
    with pytest.raises(ValueError):
        trellis_tables(np.zeros((4, 2), dtype=np.int64), np.zeros((4, 2, 2)))  # not two per state
    with pytest.raises(ValueError):
        trellis_tables(tables.next_state, tables.output_bits * 2)
    with pytest.raises(ValueError):
        shift_register_trellis(7, (0o400,))


@pytest.mark.parametrize(("constraint_length", "generators"), [K7, *OTHER_CODES])
def test_encoder_matches_commpy(constraint_length: int, generators: tuple[int, ...]):
    tables = shift_register_trellis(constraint_length, generators)
    encoder = ConvolutionalEncoder(Trellis(constraint_length, list(generators)))
    n = tables.n_outputs
    for blocks, k in ((5, 300), (3, 1), (70, 17)):
        bits, coded = coded_blocks(tables, blocks, k, seed=k)
        assert coded.dtype == np.uint8 and coded.shape == (blocks, n * (k + tables.memory))
        expected = np.array([encoder.encode(row, terminate=True)[0] for row in bits])
        np.testing.assert_array_equal(coded, expected)
    assert encode_blocks(tables, np.zeros((0, 8))).shape == (0, n * (8 + tables.memory))
    assert encode_blocks(tables, np.zeros((2, 0))).shape == (2, n * tables.memory)
    with pytest.raises(ValueError):
        encode_blocks(tables, np.full((1, 4), 2))
    with pytest.raises(ValueError):
        encode_blocks(tables, np.zeros(4))


# --- decisions equal commpy's ---------------------------------------------------------------


@pytest.mark.parametrize("ebn0_db", [1.0, 2.0, 3.0, 4.0])
def test_awgn_decisions_equal_commpy(ebn0_db: float):
    """Every decided bit of every block equals commpy's, at SNRs where decoding errs."""
    tables = k7_trellis()
    bits, coded = coded_blocks(tables, 120, 256, seed=int(10 * ebn0_db))
    llr = awgn_llr(coded, ebn0_db, 0.5, np.random.default_rng(int(ebn0_db)))
    ours = both_decoders(tables, llr)
    np.testing.assert_array_equal(ours, commpy_decode(Trellis(*K7), llr))
    if ebn0_db <= 2.0:
        assert np.count_nonzero(ours != bits) > 10  # the decoder really had to choose


@pytest.mark.parametrize("levels", [1, 2, 3])
def test_exact_ties_are_broken_like_commpy(levels: int):
    """Coarsely quantised LLRs (hard decisions and erasures) make exact metric ties common;
    commpy keeps the branch from the lower-numbered state, and so do we."""
    tables = k7_trellis()
    bits, coded = coded_blocks(tables, 60, 200, seed=levels)
    llr = awgn_llr(coded, 1.0, 0.5, np.random.default_rng(levels))
    quantised = np.clip(np.round(llr / 3.0), -levels, levels)  # many zeros (erasures)
    ours = both_decoders(tables, quantised)
    np.testing.assert_array_equal(ours, commpy_decode(Trellis(*K7), quantised))
    assert np.count_nonzero(ours != bits) > 0


@pytest.mark.slow
@pytest.mark.parametrize(("constraint_length", "generators"), OTHER_CODES)
def test_other_codes_equal_commpy(constraint_length: int, generators: tuple[int, ...]):
    """The decoders are generic: other rates and memories (sums of three LLRs in commpy's
    order included)."""
    tables = shift_register_trellis(constraint_length, generators)
    _, coded = coded_blocks(tables, 40, 150, seed=constraint_length)
    llr = awgn_llr(coded, 1.5, 1.0 / tables.n_outputs, np.random.default_rng(5))
    trellis = Trellis(constraint_length, list(generators))
    np.testing.assert_array_equal(both_decoders(tables, llr), commpy_decode(trellis, llr))
    quantised = np.round(llr / 2.0)
    np.testing.assert_array_equal(
        both_decoders(tables, quantised), commpy_decode(trellis, quantised)
    )


@pytest.mark.parametrize("generators", [(0o6, 0o5), (0o3, 0o5), (0o15, 0o12)])
def test_codes_without_complementary_butterflies_equal_commpy(generators: tuple[int, ...]):
    """A generator missing the newest or the oldest tap breaks the +-g butterfly, so these
    codes take the generic per-state ACS; decisions still equal commpy's, ties included."""
    constraint_length = max(generators).bit_length()
    tables = shift_register_trellis(constraint_length, generators)
    assert tables.butterfly and not conv_numba.complementary_butterflies(tables)
    trellis = Trellis(constraint_length, list(generators))
    _, coded = coded_blocks(tables, 13, 100, seed=26)
    llr = awgn_llr(coded, 1.5, 0.5, np.random.default_rng(26))
    for values in (llr, np.clip(np.round(llr / 3.0), -1, 1)):
        np.testing.assert_array_equal(both_decoders(tables, values), commpy_decode(trellis, values))
    assert conv_numba.complementary_butterflies(k7_trellis())


def test_relabelled_states_follow_commpy_tie_order():
    """K=7 with states renumbered (0 fixed): no butterfly layout, so torch takes its gather path,
    and commpy's tie order (lower-numbered predecessor) now means other branches."""
    base = k7_trellis()
    perm = np.concatenate([[0], 1 + np.random.default_rng(7).permutation(base.n_states - 1)])
    next_state = np.empty_like(base.next_state)
    output_bits = np.empty_like(base.output_bits)
    next_state[perm] = perm[base.next_state]
    output_bits[perm] = base.output_bits
    tables = trellis_tables(next_state, output_bits)
    assert not tables.butterfly
    fake = SimpleNamespace(
        next_state=next_state,
        output_bits=output_bits.astype(np.int64),
        n_outputs=2,
        memory=6,
        n_states=64,
    )
    bits, coded = coded_blocks(tables, 40, 200, seed=8)
    np.testing.assert_array_equal(coded, encode_blocks(base, bits))  # same code, same outputs
    llr = awgn_llr(coded, 1.5, 0.5, np.random.default_rng(9))
    for values in (llr, np.clip(np.round(llr / 3.0), -1, 1)):
        np.testing.assert_array_equal(both_decoders(tables, values), commpy_decode(fake, values))


def test_random_llrs_decisions_equal_commpy():
    """Decisions equal commpy's on LLRs that are no codeword at all: Gaussian, heavy-tailed,
    subnormal, and spread over 14 decades (every rounding of the float64 sums must match)."""
    tables = k7_trellis()
    trellis = Trellis(*K7)
    rng = np.random.default_rng(21)
    shape = (20, 2 * 130)
    cases = [
        rng.standard_normal(shape),
        np.clip(rng.standard_cauchy(shape), -1e5, 1e5),
        rng.standard_normal(shape) * 1e-310,
        rng.standard_normal(shape) * 10.0 ** rng.integers(-8, 6, shape),
    ]
    for llr in cases:
        np.testing.assert_array_equal(both_decoders(tables, llr), commpy_decode(trellis, llr))


def test_erasures_and_all_zero_llrs_equal_commpy():
    """Erasures (LLR 0) in a third of the positions, bursts of them, and all-zero blocks in the
    same groups as noisy ones: every tie goes where commpy's does."""
    tables = k7_trellis()
    trellis = Trellis(*K7)
    rng = np.random.default_rng(22)
    _, coded = coded_blocks(tables, 19, 150, seed=22)
    llr = awgn_llr(coded, 2.0, 0.5, rng)
    llr[rng.random(llr.shape) < 1 / 3] = 0.0
    llr[:, 40:90] = 0.0  # a burst of erasures in every block
    llr[::4] = 0.0  # whole blocks of erasures (one per group at least)
    llr[1::4] = np.round(llr[1::4])  # integer LLRs: ties between non-zero metrics too
    ours = both_decoders(tables, llr)
    np.testing.assert_array_equal(ours, commpy_decode(trellis, llr))
    assert not ours[::4].any()  # all ties: the all-zero path


def test_many_blocks_at_once_equal_commpy():
    """301 blocks in one call: 38 groups of 8 lanes (the last one partial) spread over the
    threads, each block's bits in its own row."""
    tables = k7_trellis()
    _, coded = coded_blocks(tables, 301, 48, seed=23)
    llr = awgn_llr(coded, 1.5, 0.5, np.random.default_rng(23))
    ours = viterbi_decode_numba(tables, llr)
    np.testing.assert_array_equal(ours, commpy_decode(Trellis(*K7), llr))
    np.testing.assert_array_equal(viterbi_decode_numba(tables, llr[::-1]), ours[::-1])


def test_numba_cleans_llrs_as_it_reads_them():
    """NaN, +-inf and values beyond +-LLR_LIMIT decode exactly as ``clean_llr``'s values (the
    ECC hands the numba decoder raw LLRs); float32 and strided inputs too."""
    tables = k7_trellis()
    trellis = Trellis(*K7)
    rng = np.random.default_rng(24)
    _, coded = coded_blocks(tables, 10, 120, seed=24)
    raw = awgn_llr(coded, 1.0, 0.5, rng)
    where = rng.random(raw.shape)
    raw[where < 0.05] = np.nan
    raw[(where >= 0.05) & (where < 0.1)] = np.inf
    raw[(where >= 0.1) & (where < 0.15)] = -np.inf
    raw[(where >= 0.15) & (where < 0.2)] *= 1e12
    raw[(where >= 0.2) & (where < 0.25)] = -0.0
    expected = commpy_decode(trellis, clean_llr(raw))
    assert np.abs(clean_llr(raw)).max() == LLR_LIMIT
    np.testing.assert_array_equal(viterbi_decode_numba(tables, raw), expected)
    noisy = awgn_llr(coded, 1.0, 0.5, rng)
    as_float32 = noisy.astype(np.float32)
    np.testing.assert_array_equal(
        viterbi_decode_numba(tables, as_float32),
        commpy_decode(trellis, as_float32.astype(np.float64)),
    )
    wide = np.repeat(noisy, 2, axis=0)[::2]  # a strided view
    np.testing.assert_array_equal(viterbi_decode_numba(tables, wide), commpy_decode(trellis, noisy))


@numba.njit(cache=False)
def _lane_steps(metric: np.ndarray, gain: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    fresh = np.empty(LANES)
    pair = np.empty(2 * LANES)
    decisions = np.zeros(3, dtype=np.uint8)
    acs_lanes(metric, fresh, gain, decisions, 0, LANES, 0, LANES, 0, 0)
    butterfly_lanes(metric, pair, gain, decisions, 0, 0, 0, LANES, 1, 2)
    return fresh, pair, decisions


@numba.njit(cache=False)
def _lane_load(llr: np.ndarray, rows: np.ndarray, column: int) -> np.ndarray:
    out = np.empty(LANES)
    load_llr_lanes(out, 0, llr, rows, column)
    return out


@numba.njit(cache=False)
def _lane_gains(symbol: np.ndarray, signs: np.ndarray) -> np.ndarray:
    gain = np.empty(signs.shape[0] * LANES)
    pattern_gains_lanes(gain, symbol, signs)
    return gain


def test_lane_operations_follow_the_scalar_rules():
    """The vector add-compare-select keeps the first branch on a tie (-inf and -0.0 included)
    and sets bit ``lane`` of the decision byte where the second branch won (the butterfly
    with gains +-g); the gains are the left-to-right sums of sign times LLR; the lane loads
    read one value per row and clean it like ``clean_llr``."""
    rng = np.random.default_rng(25)
    weights = 1 << np.arange(LANES)
    for _ in range(20):
        metric = rng.choice([-np.inf, -0.0, 0.0, 1.0, 2.0, 3.5], 2 * LANES)
        gain = rng.choice([-1.0, -0.0, 0.0, 1.0, 2.5], 2 * LANES)
        fresh, pair, decisions = _lane_steps(metric, gain)
        even, odd = metric[:LANES], metric[LANES:]
        g = gain[:LANES]
        for got, byte, keep, other in (
            (fresh, decisions[0], even + g, odd + gain[LANES:]),
            (pair[:LANES], decisions[1], even + g, odd - g),
            (pair[LANES:], decisions[2], even - g, odd + g),
        ):
            take = other > keep
            np.testing.assert_array_equal(got, np.where(take, other, keep))
            np.testing.assert_array_equal(np.signbit(got), np.signbit(np.where(take, other, keep)))
            assert byte == (take * weights).sum()
    for n_outputs in (1, 2, 3):
        size = n_outputs * LANES
        symbol = rng.standard_normal(size) * 10.0 ** rng.integers(-5, 5, size)
        signs = shift_register_trellis(3, (0o7, 0o5, 0o3)[:n_outputs]).pattern_signs
        expected = np.zeros((signs.shape[0], LANES))
        for p in range(signs.shape[0]):
            expected[p] = signs[p, 0] * symbol[:LANES]
            for j in range(1, n_outputs):
                expected[p] = expected[p] + signs[p, j] * symbol[j * LANES : (j + 1) * LANES]
        np.testing.assert_array_equal(_lane_gains(symbol, signs), expected.ravel())
    llr = np.array([np.nan, np.inf, -np.inf, 2e6, -2e6, -0.0, 0.5, -3.0] * 3)
    rows = np.arange(LANES, dtype=np.int64) * 3  # one value of each of 8 rows of length 3
    got = _lane_load(llr, rows, 0)
    np.testing.assert_array_equal(got, clean_llr(llr[rows]))
    np.testing.assert_array_equal(np.signbit(got), np.signbit(clean_llr(llr[rows])))


# --- behaviour ------------------------------------------------------------------------------


@pytest.mark.parametrize("k", [1, 2, 100, 1000])
def test_noiseless_decoding_is_exact(k: int):
    tables = k7_trellis()
    bits, coded = coded_blocks(tables, 9, k, seed=k)
    for magnitude in (1e-3, 1.0, 1e6):
        np.testing.assert_array_equal(both_decoders(tables, magnitude * (1.0 - 2.0 * coded)), bits)


def test_ber_at_3db_matches_the_reference_within_statistical_error():
    """Independent noise for ours (many blocks) and commpy (fewer): the BERs agree within four
    standard errors, estimated from per-block error fractions (Viterbi errors come in bursts)."""
    tables = k7_trellis()
    rate = 0.5
    estimates = []
    for blocks, seed, decode in (
        (400, 1, lambda llr: viterbi_decode_numba(tables, llr)),
        (50, 2, lambda llr: commpy_decode(Trellis(*K7), llr)),
    ):
        bits, coded = coded_blocks(tables, blocks, 2048, seed=seed)
        llr = awgn_llr(coded, 3.0, rate, np.random.default_rng(seed + 10))
        per_block = np.mean(decode(llr) != bits, axis=1)
        estimates.append((per_block.mean(), per_block.std(ddof=1) / np.sqrt(blocks)))
    (ours, ours_se), (ref, ref_se) = estimates
    assert 1e-5 < ours < 3e-3  # soft K=7 at 3 dB: a few 1e-4
    assert abs(ours - ref) < 4.0 * np.hypot(ours_se, ref_se)


def test_robust_inputs():
    tables = k7_trellis()
    trellis = Trellis(*K7)
    zeros = np.zeros((3, 2 * 50))
    assert not both_decoders(tables, zeros).any()  # all ties: the all-zero path
    np.testing.assert_array_equal(both_decoders(tables, zeros), commpy_decode(trellis, zeros))
    rng = np.random.default_rng(3)
    huge = rng.choice([-1e15, 1e15], (4, 2 * 80)) * rng.random((4, 2 * 80))
    cleaned = clean_llr(huge)  # what the ECC hands the torch decoder; numba cleans as it reads
    expected = commpy_decode(trellis, cleaned)
    np.testing.assert_array_equal(both_decoders(tables, cleaned), expected)
    np.testing.assert_array_equal(viterbi_decode_numba(tables, huge), expected)
    np.testing.assert_array_equal(
        viterbi_decode_torch(tables, torch.from_numpy(huge)).numpy(), commpy_decode(trellis, huge)
    )
    one = awgn_llr(coded_blocks(tables, 1, 33, seed=4)[1], 1.0, 0.5, rng)
    np.testing.assert_array_equal(both_decoders(tables, one), commpy_decode(trellis, one))
    assert both_decoders(tables, np.zeros((0, 2 * 20))).shape == (0, 14)
    assert both_decoders(tables, np.zeros((2, 2 * 6))).shape == (2, 0)  # tail only
    float32 = one.astype(np.float32)
    np.testing.assert_array_equal(
        viterbi_decode_torch(tables, torch.from_numpy(float32)).numpy(),
        viterbi_decode_numba(tables, float32),
    )
    for bad in (np.zeros((2, 2 * 6 + 1)), np.zeros((2, 2 * 5)), np.zeros(12)):
        with pytest.raises(ValueError):
            viterbi_decode_numba(tables, bad)
        with pytest.raises(ValueError):
            viterbi_decode_torch(tables, torch.from_numpy(bad))


@pytest.mark.parametrize("blocks", [1, 7, 9, 64, 70, 130])
def test_block_counts_and_group_padding(blocks: int):
    """Blocks are decoded in lock-step groups of 8 lanes; partial groups and several groups
    still give commpy's bits in the right rows, on the butterfly and the generic ACS path."""
    tables = k7_trellis()
    _, coded = coded_blocks(tables, blocks, 40, seed=blocks)
    llr = awgn_llr(coded, 2.0, 0.5, np.random.default_rng(blocks))
    expected = commpy_decode(Trellis(*K7), llr)
    np.testing.assert_array_equal(viterbi_decode_numba(tables, llr), expected)
    for butterfly in (True, False):  # the generic ACS loop too
        out = np.zeros_like(expected)
        conv_numba._viterbi_kernel(
            llr,
            2,
            6,
            tables.pred_state,
            tables.pred_input,
            tables.pred_pattern,
            tables.pattern_signs,
            butterfly,
            out,
        )
        np.testing.assert_array_equal(out, expected)


def test_torch_chunking_gives_the_same_bits(monkeypatch: pytest.MonkeyPatch):
    tables = k7_trellis()
    _, coded = coded_blocks(tables, 11, 90, seed=11)
    llr = torch.from_numpy(awgn_llr(coded, 1.5, 0.5, np.random.default_rng(11)))
    whole = viterbi_decode_torch(tables, llr)
    # three steps per time chunk
    monkeypatch.setattr(conv_torch, "TIME_CHUNK_ELEMENTS", 3 * 11 * 128)
    small = viterbi_decode_torch(tables, llr, decision_bytes=4 * 96 * 64)  # four blocks a chunk
    np.testing.assert_array_equal(small.numpy(), whole.numpy())


# --- the Convolutional ECC's backends -------------------------------------------------------


def test_conv_backends_agree():
    rng = np.random.default_rng(12)
    eccs = {
        backend: ECCS.build(ECCS.config({"name": "conv", "block_bits": 150, "backend": backend}))
        for backend in ("numba", "torch", "reference")
    }
    bits = rng.integers(0, 2, 20 * 150 - 37).astype(np.uint8)
    coded = {backend: ecc.encode(bits) for backend, ecc in eccs.items()}
    assert coded["numba"].dtype == np.uint8
    np.testing.assert_array_equal(coded["numba"], coded["reference"])
    np.testing.assert_array_equal(coded["torch"], coded["reference"])
    size = coded["numba"].size
    llrs = [
        awgn_llr(coded["numba"], 1.5, 0.5, rng),
        np.full(size, np.inf) * rng.choice([-1.0, 1.0], size),
        np.where(rng.random(size) < 0.3, np.nan, rng.standard_normal(size) * 1e300),
        np.clip(np.round(awgn_llr(coded["numba"], 1.0, 0.5, rng)), -1, 1).astype(np.float32),
    ]
    for llr in llrs:
        results = {backend: ecc.decode(llr) for backend, ecc in eccs.items()}
        for decoded, ok in results.values():
            assert decoded.dtype == np.uint8 and decoded.shape == (20 * 150,)
            assert ok.all() and ok.shape == (20,)
            np.testing.assert_array_equal(decoded, results["reference"][0])
    assert eccs["numba"].decode(np.zeros(0))[0].shape == (0,)


def test_conv_backend_setting():
    auto = ECCS.build(ECCS.config({"name": "conv", "block_bits": 16}))
    assert auto.backend == ("torch" if torch.cuda.is_available() else "numba")
    assert ECCS.config({"name": "conv"}).params() == {"block_bits": 2048}
    torch_config = ECCS.config({"name": "conv", "backend": "torch"})
    assert torch_config.params() == {"block_bits": 2048, "backend": "torch"}
    assert ECCS.build(torch_config).backend == "torch"
    with pytest.raises(ScenarioError):
        ECCS.config({"name": "conv", "backend": "cuda"})
