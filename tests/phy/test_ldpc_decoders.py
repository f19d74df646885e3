"""Batched LDPC belief propagation: commpy's decisions, statistics of the schedules and
methods, torch == numba, early stopping, odd inputs, the ``LDPC`` wiring, and the int16
SIMD decoder against float64 layered min-sum."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pydantic
import pytest
import torch

from noisylink.errors import ScenarioError
from noisylink.phy.ecc import ECCS
from noisylink.phy.ecc.backends import resolve_backend
from noisylink.phy.ecc.ldpc import bp
from noisylink.phy.ecc.ldpc import numba as bp_numba
from noisylink.phy.ecc.ldpc import simd as bp_simd
from noisylink.phy.ecc.ldpc import torch as bp_torch
from noisylink.phy.ecc.ldpc.code import LDPCConfig, build_code, decode_batch
from noisylink.phy.ecc.ldpc.graph import ldpc_graph
from noisylink.phy.ecc.ldpc.torch import decode_batch_torch

METHODS = ["sum-product", "min-sum"]
SCHEDULES = ["flooding", "layered"]


def awgn_blocks(
    n: int, rate: str, ebn0_db: float, blocks: int, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """Random codewords ``[blocks, n]`` and their exact BPSK (0 -> +1) AWGN LLRs at Eb/N0."""
    tables = build_code(n, rate)
    rng = np.random.default_rng(seed)
    messages = rng.integers(0, 2, (blocks, tables.code.k)).astype(np.float32)
    codewords = (messages @ tables.generator).astype(np.int64) % 2
    code_rate = tables.code.k / tables.code.n
    sigma = math.sqrt(1.0 / (2.0 * code_rate * 10.0 ** (ebn0_db / 10.0)))
    y = 1.0 - 2.0 * codewords + sigma * rng.standard_normal(codewords.shape)
    return codewords.astype(np.uint8), 2.0 * y / sigma**2


def frame_errors(words: np.ndarray, codewords: np.ndarray) -> np.ndarray:
    return np.any(words != codewords, axis=1)


def z_score(fail_a: np.ndarray, fail_b: np.ndarray) -> float:
    """Pooled two-proportion z statistic of FER(a) - FER(b). Both arms decode the same LLRs,
    so the outcomes are positively correlated and this (independent-sample) variance is an
    overestimate: the test is conservative and fails only on a clear difference."""
    pooled = (fail_a.mean() + fail_b.mean()) / 2.0
    se = math.sqrt(max(pooled * (1.0 - pooled) * (1.0 / fail_a.size + 1.0 / fail_b.size), 1e-12))
    return float((fail_a.mean() - fail_b.mean()) / se)


# --- the graph ------------------------------------------------------------------------------


@pytest.mark.parametrize(("n", "rate"), [(648, "1/2"), (1944, "5/6")])
def test_graph_describes_h(n: int, rate: str):
    tables = build_code(n, rate)
    graph = tables.graph
    h = tables.code.H
    rebuilt = np.zeros_like(h)
    rebuilt[graph.edge_check, graph.edge_var] = 1
    np.testing.assert_array_equal(rebuilt, h)
    assert np.all(np.diff(graph.edge_check) >= 0)  # check-major, as commpy numbers edges
    np.testing.assert_array_equal(np.diff(graph.check_ptr), h.sum(axis=1))
    for v in range(0, graph.n, 97):
        edges = graph.var_edges[graph.var_ptr[v] : graph.var_ptr[v + 1]]
        assert np.all(np.diff(edges) > 0) and np.all(graph.edge_var[edges] == v)
    # 802.11n: the layers are the block rows of Z checks, and no layer repeats a bit
    z = n // 24
    np.testing.assert_array_equal(graph.layer_ptr, np.arange(0, graph.m + 1, z))
    for first, end in zip(graph.layer_ptr[:-1], graph.layer_ptr[1:], strict=True):
        bits = graph.edge_var[graph.check_ptr[first] : graph.check_ptr[end]]
        assert np.unique(bits).size == bits.size


def test_graph_of_a_small_irregular_code():
    """Hamming(7,4): checks overlap, so each check is its own layer; both backends and both
    schedules correct any single error."""
    h = np.array([[1, 1, 0, 1, 1, 0, 0], [1, 0, 1, 1, 0, 1, 0], [0, 1, 1, 1, 0, 0, 1]])
    graph = ldpc_graph(h)
    np.testing.assert_array_equal(graph.layer_ptr, [0, 1, 2, 3])
    llr = np.full((7, 7), 3.0)
    llr[np.arange(7), np.arange(7)] = -1.0  # all-zero word, one weak error per block
    for method in METHODS:
        for schedule in SCHEDULES:
            for backend in ("numba", "torch"):
                result = decode_batch(graph, llr, 10, method, schedule, backend)
                assert not result.words.any() and result.ok.all(), (method, schedule, backend)


# --- flooding == commpy ---------------------------------------------------------------------

# (n, rate, Eb/N0 points, blocks per point): the waterfall, where decisions are fragile
REFERENCE_CASES = [
    (648, "1/2", (1.0, 1.75, 2.5), 50),
    (1944, "1/2", (1.5, 2.5), 16),
    (648, "5/6", (3.0,), 50),
    (1944, "5/6", (3.5,), 16),
]


@pytest.mark.slow
@pytest.mark.parametrize("method", METHODS)
def test_flooding_reproduces_commpy(method: str):
    """Same LLRs through commpy's ``LDPCCode.decode`` and ours: same words, same iteration
    counts, ``ok`` exactly when commpy's word satisfies H.

    Min-sum is bit-for-bit commpy's arithmetic, so every block must match. Sum-product uses
    our own tanh/atanh (within 5 ulp of libm; commpy's numpy SIMD tanh is itself 1 ulp off
    libm for a quarter of inputs), so a borderline block could in principle decide
    differently: we allow 1 % of blocks (none differ in practice)."""
    same_words = []
    for n, rate, points, blocks in REFERENCE_CASES:
        tables = build_code(n, rate)
        for seed, ebn0 in enumerate(points):
            _, llr = awgn_blocks(n, rate, ebn0, blocks, seed)
            ours = decode_batch(tables.graph, llr, 20, method, "flooding", "numba")
            assert (ours.iterations > 0).all()  # commpy always runs one; ours only if needed
            for b in range(blocks):
                _, word, iterations = tables.code.decode(llr[b], max_iter=20, method=method)
                same = np.array_equal(word, ours.words[b])
                same_words.append(same)
                if same:
                    assert iterations == ours.iterations[b]
                    syndrome = (tables.parity_check @ word.astype(np.int32)) % 2
                    assert ours.ok[b] == (not syndrome.any())
    same_words = np.array(same_words)
    if method == "min-sum":
        assert same_words.all()
    else:
        assert same_words.mean() >= 0.99, f"{np.count_nonzero(~same_words)} blocks differ"


def test_ldpc_package_agrees():
    """The ``ldpc`` package (Roffe's C++ BP, parallel schedule) on the same LLRs: it decodes
    a syndrome with per-bit flip probabilities, so the channel goes in as hard decisions and
    ``p = 1 / (1 + exp(|LLR|))``. Its rules differ from commpy's only on exact ties (a zero
    message counts as negative, a zero posterior decides 1) and by the LLR's round trip
    through ``p``; its product-sum does not clip. We ask for 95 % identical words (all are,
    in practice)."""
    ldpc = pytest.importorskip("ldpc")
    for n, rate, ebn0 in [(648, "1/2", 1.5), (1944, "5/6", 3.5)]:
        tables = build_code(n, rate)
        _, llr = awgn_blocks(n, rate, ebn0, 30, 21)
        hard = (llr < 0).astype(np.uint8)
        flip = 1.0 / (1.0 + np.exp(np.abs(llr)))
        for method, theirs in [("sum-product", "product_sum"), ("min-sum", "minimum_sum")]:
            decoder = ldpc.BpDecoder(
                tables.code.H,
                error_channel=np.full(n, 0.1),
                max_iter=20,
                bp_method=theirs,
                ms_scaling_factor=0.75,
                schedule="parallel",
                input_vector_type="received_vector",
            )
            words = np.empty_like(hard)
            for b in range(len(llr)):
                decoder.update_channel_probs(flip[b])
                words[b] = decoder.decode(hard[b])
            ours = decode_batch(tables.graph, llr, 20, method, "flooding")
            assert np.mean(np.all(words == ours.words, axis=1)) >= 0.95, (n, rate, method)


# --- statistics: layered vs flooding, sum-product vs min-sum --------------------------------


@pytest.fixture(scope="module")
def waterfall() -> dict[str, Any]:
    """1500 blocks of n=648 rate 1/2 at 1.5 dB (FER ~0.14 with 20 flooding sum-product
    iterations) decoded every way once; shared by the statistical tests."""
    tables = build_code(648, "1/2")
    codewords, llr = awgn_blocks(648, "1/2", 1.5, 1500, 31)
    runs = {}
    for method in METHODS:
        for schedule, iterations in [("flooding", 20), ("layered", 20), ("layered", 10)]:
            result = decode_batch(tables.graph, llr, iterations, method, schedule)
            runs[method, schedule, iterations] = result
    return {"codewords": codewords, "runs": runs}


@pytest.mark.slow
def test_layered_needs_half_the_iterations(waterfall: dict[str, Any]):
    """Sum-product: 10 layered iterations give the FER of 20 flooding ones (within 3 SE)."""
    runs, codewords = waterfall["runs"], waterfall["codewords"]
    layered = frame_errors(runs["sum-product", "layered", 10].words, codewords)
    flooding = frame_errors(runs["sum-product", "flooding", 20].words, codewords)
    assert 0.05 < flooding.mean() < 0.3  # the operating point really is in the waterfall
    assert abs(z_score(layered, flooding)) < 3.0


@pytest.mark.parametrize("method", METHODS)
def test_layered_is_not_worse_and_stops_sooner(method: str, waterfall: dict[str, Any]):
    runs, codewords = waterfall["runs"], waterfall["codewords"]
    layered, flooding = runs[method, "layered", 20], runs[method, "flooding", 20]
    z = z_score(frame_errors(layered.words, codewords), frame_errors(flooding.words, codewords))
    assert z < 3.0
    assert layered.iterations.mean() < 0.75 * flooding.iterations.mean()


@pytest.mark.parametrize("schedule", SCHEDULES)
def test_sum_product_is_not_worse_than_min_sum(schedule: str, waterfall: dict[str, Any]):
    runs, codewords = waterfall["runs"], waterfall["codewords"]
    sp = frame_errors(runs["sum-product", schedule, 20].words, codewords)
    ms = frame_errors(runs["min-sum", schedule, 20].words, codewords)
    assert z_score(sp, ms) < 3.0
    bit_errors = [np.mean(runs[m, schedule, 20].words != codewords) for m in METHODS]
    assert bit_errors[0] <= bit_errors[1] * 1.5


def test_ok_flags(waterfall: dict[str, Any]):
    """A word that is not ``ok`` fails a check, so it cannot be the sent codeword; an ``ok``
    word is (almost always, at this SNR) the sent one."""
    runs, codewords = waterfall["runs"], waterfall["codewords"]
    for result in runs.values():
        wrong = frame_errors(result.words, codewords)
        assert wrong[~result.ok].all()
        assert np.count_nonzero(wrong & result.ok) <= 0.01 * wrong.size


# --- torch == numba -------------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize("schedule", SCHEDULES)
@pytest.mark.parametrize("method", METHODS)
def test_torch_matches_numba(method: str, schedule: str):
    """Same algorithm on CPU tensors: the same words, ``ok`` flags and iteration counts,
    compared exactly. Both backends run the same float64 operations in the same order (our
    tanh/atanh use only +, *, /, floor and compares, which IEEE rounds identically; sums in
    edge order), so not even float ties can differ."""
    for n, rate, ebn0, blocks in [(648, "1/2", 1.5, 40), (1944, "5/6", 3.25, 12)]:
        graph = build_code(n, rate).graph
        _, llr = awgn_blocks(n, rate, ebn0, blocks, 41)
        llr[0] = 8.0  # a codeword already: 0 iterations on both
        ours = decode_batch(graph, llr, 20, method, schedule, "numba")
        theirs = decode_batch(graph, llr, 20, method, schedule, "torch", device="cpu")
        np.testing.assert_array_equal(theirs.words, ours.words)
        np.testing.assert_array_equal(theirs.ok, ours.ok)
        np.testing.assert_array_equal(theirs.iterations, ours.iterations)
        assert not ours.ok.all() and ours.iterations[0] == 0  # both outcomes occur


def test_numeric_kernels_match_libm_and_torch():
    """Our vectorisable tanh(x/2) and 2 atanh(p): within 5 ulp of libm, bit-identical in
    torch, and exact at the edges (0, the clip, beyond the argument limit)."""
    rng = np.random.default_rng(51)
    x = np.concatenate([rng.standard_normal(3000) * 6, rng.standard_normal(500) * 1e-4])
    x = np.concatenate([x, [0.0, -0.0, 40.0, -41.0, 1e6, -1e6]])
    p = np.concatenate([np.tanh(x / 2), 1.0 - np.logspace(-13, 0, 200), [1.0, -1.0]])
    ours_t = np.array([bp_numba._tanh_half(v) for v in x])
    ours_a = np.array([bp_numba._atanh2(v) for v in p])
    libm_t = np.array([math.tanh(v / 2) for v in x])
    libm_a = np.array([2 * math.atanh(v) for v in np.clip(p, -bp.TANH_CLIP, bp.TANH_CLIP)])
    for ours, libm in [(ours_t, libm_t), (ours_a, libm_a)]:
        assert np.all(np.abs(ours - libm) <= 5 * np.spacing(np.abs(libm)))
        assert np.array_equal(np.signbit(ours), np.signbit(libm))
    assert ours_a[-2] == 2 * math.atanh(bp.TANH_CLIP)  # the clip: ~28.3
    torch_t = bp_torch._tanh_half_torch(torch.from_numpy(x)).numpy()
    torch_a = bp_torch._atanh2_torch(torch.from_numpy(p)).numpy()
    np.testing.assert_array_equal(torch_t.view(np.int64), ours_t.view(np.int64))
    np.testing.assert_array_equal(torch_a.view(np.int64), ours_a.view(np.int64))


def test_torch_chunks():
    """Small chunks (here 2 words) decode like one batch."""
    graph = build_code(648, "1/2").graph
    _, llr = awgn_blocks(648, "1/2", 1.75, 9, 43)
    whole = decode_batch(graph, llr, 20, "min-sum", "layered")
    chunked = decode_batch_torch(
        graph, torch.from_numpy(llr), 20, "min-sum", "layered", chunk_elements=2 * 324 * 7
    )
    for got, expected in zip(chunked, whole, strict=True):
        np.testing.assert_array_equal(got.numpy(), expected)


def test_torch_float32_runs():
    graph = build_code(648, "1/2").graph
    codewords, llr = awgn_blocks(648, "1/2", 3.0, 8, 61)
    words, ok, used = decode_batch_torch(
        graph, torch.from_numpy(llr).float(), 20, "min-sum", "layered"
    )
    assert words.dtype == torch.uint8 and ok.dtype == torch.bool and used.dtype == torch.int32
    np.testing.assert_array_equal(words.numpy(), codewords)


# --- early stopping and the slot machinery --------------------------------------------------


@pytest.mark.parametrize("backend", ["numba", "torch"])
def test_clean_codewords_take_no_iterations(backend: str):
    codewords, _ = awgn_blocks(648, "1/2", 2.0, 5, 71)
    llr = 4.0 * (1.0 - 2.0 * codewords)
    llr[:, ::50] *= 0.01  # weak but right
    graph = build_code(648, "1/2").graph
    for method in METHODS:
        for schedule in SCHEDULES:
            result = decode_batch(graph, llr, 20, method, schedule, backend)
            np.testing.assert_array_equal(result.words, codewords)
            assert result.ok.all() and not result.iterations.any()


@pytest.mark.parametrize("schedule", SCHEDULES)
@pytest.mark.parametrize("method", METHODS)
def test_stops_at_the_first_zero_syndrome(method: str, schedule: str):
    """Capping the iterations at ``k`` gives, per word, what the full run had after ``k``
    iterations: words that stopped by then are unchanged; the others are not yet ``ok``.
    So each word stops exactly when its syndrome first vanishes, and a word's result does
    not depend on which other words share its task (slots refill differently per cap)."""
    graph = build_code(648, "1/2").graph
    _, llr = awgn_blocks(648, "1/2", 1.5, 60, 81)
    full = decode_batch(graph, llr, 20, method, schedule)
    assert ((full.iterations >= 1) & (full.iterations <= 20)).all()
    assert (full.iterations[~full.ok] == 20).all() and full.ok.any() and not full.ok.all()
    for cap in (0, 1, 3, 6, 10, 19):
        capped = decode_batch(graph, llr, cap, method, schedule)
        stopped = full.ok & (full.iterations <= cap)
        np.testing.assert_array_equal(capped.ok, stopped)
        np.testing.assert_array_equal(capped.words[stopped], full.words[stopped])
        np.testing.assert_array_equal(capped.iterations[stopped], full.iterations[stopped])
        assert (capped.iterations[~stopped] == cap).all()


def test_results_do_not_depend_on_batching(monkeypatch: pytest.MonkeyPatch):
    """One word at a time, and a shuffled batch split into 5 tasks of at most 3 slots, give
    the same as one batch."""
    graph = build_code(648, "1/2").graph
    _, llr = awgn_blocks(648, "1/2", 1.75, 24, 91)
    whole = decode_batch(graph, llr, 20, "sum-product", "layered")
    for b in range(0, 24, 5):
        single = decode_batch(graph, llr[b], 20, "sum-product", "layered")
        np.testing.assert_array_equal(single.words[0], whole.words[b])
        assert single.iterations[0] == whole.iterations[b]
    order = np.random.default_rng(92).permutation(24)
    monkeypatch.setattr(bp_numba, "LANES", 3)
    monkeypatch.setattr(bp_numba, "TASKS_PER_THREAD", 5 * bp_numba.TASKS_PER_THREAD)
    shuffled = decode_batch(graph, llr[order], 20, "sum-product", "layered")
    np.testing.assert_array_equal(shuffled.words, whole.words[order])
    np.testing.assert_array_equal(shuffled.iterations, whole.iterations[order])


# --- odd inputs -----------------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize("backend", ["numba", "torch"])
def test_odd_inputs_never_crash(backend: str):
    graph = build_code(648, "5/6").graph
    n = graph.n
    rng = np.random.default_rng(101)
    signs = rng.choice([-1.0, 1.0], (3, n))
    with_nan = rng.standard_normal((3, n)) * 4
    with_nan[:, ::7] = np.nan
    cases = {
        "zeros": np.zeros((3, n)),
        "huge": signs * 1e300,
        "inf": signs * np.inf,
        "nan": with_nan,
        "noise": rng.standard_normal((3, n)) * 100.0,
        "float32": rng.standard_normal((3, n)).astype(np.float32),
    }
    for method in METHODS:
        for schedule in SCHEDULES:
            for name, llr in cases.items():
                words, ok, used = decode_batch(graph, llr, 8, method, schedule, backend)
                assert words.shape == (3, n) and words.dtype == np.uint8, name
                assert ok.shape == used.shape == (3,) and ok.dtype == np.bool_, name
                assert used.dtype == np.int32 and ((used >= 0) & (used <= 8)).all(), name
                assert set(np.unique(words)) <= {0, 1}, name
            # NaN counts as an erasure (0): same as zeroing it
            cleaned = np.nan_to_num(cases["nan"], nan=0.0)
            np.testing.assert_array_equal(
                decode_batch(graph, cases["nan"], 8, method, schedule, backend).words,
                decode_batch(graph, cleaned, 8, method, schedule, backend).words,
            )
    zeros = decode_batch(graph, cases["zeros"], 8, backend=backend)
    assert zeros.ok.all() and not zeros.iterations.any()  # all-zero is a codeword
    assert not decode_batch(graph, cases["noise"], 8, backend=backend).ok.any()


@pytest.mark.parametrize("backend", ["numba", "torch"])
def test_shapes_single_and_empty(backend: str):
    graph = build_code(648, "1/2").graph
    codewords, llr = awgn_blocks(648, "1/2", 3.0, 1, 111)
    single = decode_batch(graph, llr[0], 20, backend=backend)  # one 1-D block
    assert single.words.shape == (1, 648) and single.ok.shape == single.iterations.shape == (1,)
    np.testing.assert_array_equal(single.words, codewords)
    for empty in (np.zeros((0, 648)), np.zeros(0)):
        result = decode_batch(graph, empty, 20, "min-sum", "layered", backend)
        assert result.words.shape == (0, 648) and result.words.dtype == np.uint8
        assert result.ok.shape == result.iterations.shape == (0,)
    none = decode_batch(graph, llr, 0, backend=backend)  # no iterations: channel decisions
    np.testing.assert_array_equal(none.words, (llr < 0).astype(np.uint8))
    assert not none.iterations.any()


def test_bad_arguments_are_rejected():
    graph = build_code(648, "1/2").graph
    llr = np.zeros((1, 648))
    with pytest.raises(ValueError):
        decode_batch(graph, llr, 5, method="bit-flip")  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        decode_batch(graph, llr, 5, schedule="random")  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        decode_batch(graph, llr, 5, backend="cupy")  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        decode_batch(graph, llr, -1)
    with pytest.raises(ValueError):
        decode_batch(graph, np.zeros(100), 5)  # not a whole number of blocks


# --- the LDPC code's settings ---------------------------------------------------------------


def test_ldpc_config_backend_and_schedule():
    config = ECCS.config({"name": "ldpc"})
    assert config.backend == "auto" and config.schedule == "flooding"
    assert "backend" not in config.params() and "schedule" not in config.params()
    layered = ECCS.config({"name": "ldpc", "schedule": "layered", "backend": "numba"})
    assert layered.params()["schedule"] == "layered" and layered.params()["backend"] == "numba"
    with pytest.raises(ScenarioError, match="reference"):
        ECCS.config({"name": "ldpc", "backend": "reference", "schedule": "layered"})
    with pytest.raises(pydantic.ValidationError, match="flooding"):
        LDPCConfig(backend="reference", schedule="layered")
    with pytest.raises(ScenarioError):
        ECCS.config({"name": "ldpc", "backend": "cuda"})
    expected = "torch" if torch.cuda.is_available() else "numba"
    assert resolve_backend("auto") == expected


@pytest.mark.parametrize("method", METHODS)
def test_ldpc_backends_decode_alike(method: str):
    """Through ``LDPC.decode`` (fast path, erasure rule, info bits): the reference (commpy),
    numba and torch backends give the same bits and flags."""
    codewords, llr = awgn_blocks(648, "1/2", 1.5, 10, 121)
    llr[1] = 5.0 * (1.0 - 2.0 * codewords[1])  # clean: skips BP
    llr[2, :400] = 0.0  # more erasures than parity bits: not ok, no BP
    outputs = {}
    for backend in ("reference", "numba", "torch"):
        ecc = ECCS.build(
            ECCS.config({"name": "ldpc", "n": 648, "method": method, "backend": backend})
        )
        outputs[backend] = ecc.decode(llr.reshape(-1))
    for backend in ("numba", "torch"):
        np.testing.assert_array_equal(outputs[backend][0], outputs["reference"][0])
        np.testing.assert_array_equal(outputs[backend][1], outputs["reference"][1])
    ok = outputs["numba"][1]
    assert ok[1] and not ok[2] and not ok.all()


def test_ldpc_layered_decodes():
    ecc = ECCS.build(ECCS.config({"name": "ldpc", "schedule": "layered", "iterations": 10}))
    rng = np.random.default_rng(131)
    bits = rng.integers(0, 2, 12 * ecc.k).astype(np.uint8)
    coded = ecc.encode(bits).reshape(12, -1)
    sigma = math.sqrt(1.0 / (2.0 * ecc.rate * 10.0 ** (2.0 / 10.0)))
    llr = 2.0 * (1.0 - 2.0 * coded + sigma * rng.standard_normal(coded.shape)) / sigma**2
    decoded, ok = ecc.decode(llr.reshape(-1))
    assert ok.all()
    np.testing.assert_array_equal(decoded, bits)


# --- the int16 inter-frame SIMD decoder (simd.py, ``precision: int16``) --------------------

CODES = [(n, rate) for n in (648, 1296, 1944) for rate in ("1/2", "2/3", "3/4", "5/6")]
LAYERED_SCALE = bp.default_scale("layered")


def decode_int16(n: int, rate: str, llr: np.ndarray, iterations: int = 10) -> bp.BPResult:
    return bp_simd.decode_simd(build_code(n, rate).layout, llr, iterations, LAYERED_SCALE)


def decode_float64(n: int, rate: str, llr: np.ndarray, iterations: int = 10) -> bp.BPResult:
    return decode_batch(build_code(n, rate).graph, llr, iterations, "min-sum", "layered")


def odd_checks(n: int, rate: str, words: np.ndarray) -> np.ndarray:
    return np.any((build_code(n, rate).parity_check @ words.T.astype(np.int32)) % 2, axis=0)


@pytest.mark.parametrize(("n", "rate"), CODES)
def test_qc_layout_describes_h(n: int, rate: str):
    """Every block of the layout, lifted, is where commpy's H has its ones (all 12 codes)."""
    tables = build_code(n, rate)
    layout = tables.layout
    z = layout.z
    rebuilt = np.zeros_like(tables.code.H)
    for layer in range(layout.layer_ptr.size - 1):
        for b in range(layout.layer_ptr[layer], layout.layer_ptr[layer + 1]):
            rows = layer * z + np.arange(z)
            bits = layout.block_col[b] * z + (np.arange(z) + layout.block_shift[b]) % z
            rebuilt[rows, bits] = 1
    np.testing.assert_array_equal(rebuilt, tables.code.H)
    assert layout.n == n


@pytest.mark.parametrize(("n", "rate"), CODES)
def test_int16_decodes_every_80211n_code(n: int, rate: str):
    """A little above each code's waterfall, every word comes back as sent, ``ok``."""
    ebn0 = {"1/2": 3.0, "2/3": 3.5, "3/4": 4.0, "5/6": 4.5}[rate]
    codewords, llr = awgn_blocks(n, rate, ebn0, 40, 141)
    result = decode_int16(n, rate, llr)
    np.testing.assert_array_equal(result.words, codewords)
    assert result.ok.all() and (result.iterations >= 1).all()


@pytest.mark.parametrize(
    ("n", "rate", "ebn0"), [(648, "1/2", 1.5), (1944, "1/2", 1.5), (1296, "5/6", 3.25)]
)
def test_int16_agrees_with_float64_layered_min_sum(n: int, rate: str, ebn0: float):
    """In the waterfall: wherever both decoders stop with a zero syndrome they give the same
    word (all at once, ``ok`` words are the sent ones); most words are identical outright;
    ``ok`` is exactly "the returned word satisfies every check"."""
    codewords, llr = awgn_blocks(n, rate, ebn0, 300, 151)
    ours, theirs = decode_int16(n, rate, llr), decode_float64(n, rate, llr)
    both = ours.ok & theirs.ok
    np.testing.assert_array_equal(ours.words[both], theirs.words[both])
    np.testing.assert_array_equal(ours.words[ours.ok], codewords[ours.ok])
    assert np.mean(np.all(ours.words == theirs.words, axis=1)) >= 0.75
    np.testing.assert_array_equal(ours.ok, ~odd_checks(n, rate, ours.words))
    assert 0.02 < 1 - theirs.ok.mean() < 0.5  # really in the waterfall


@pytest.mark.slow
def test_int16_frame_error_rate_equals_float64():
    """Issue 17's acceptance test: 10 layered min-sum iterations with early termination on
    n=1944 rate 1/2 at Eb/N0 1.5 dB (FER ~0.2), 3000 words: the int16 decoder's FER equals
    the float64 decoder's within statistical error. Two-proportion z-test at |z| < 3.29
    (two-sided p = 1e-3 under equal FERs); both decode the same LLRs, so their errors are
    positively correlated and the independent-sample variance overestimates the spread of
    the difference: a false alarm is rarer still."""
    codewords, llr = awgn_blocks(1944, "1/2", 1.5, 3000, 161)
    int16 = frame_errors(decode_int16(1944, "1/2", llr).words, codewords)
    float64 = frame_errors(decode_float64(1944, "1/2", llr).words, codewords)
    print(
        f"FER at 1.5 dB over {codewords.shape[0]} words: int16 {int16.mean():.4f}, "
        f"float64 {float64.mean():.4f}"
    )
    assert 0.05 < float64.mean() < 0.5
    assert abs(z_score(int16, float64)) < 3.29


@pytest.mark.parametrize("cap", [0, 1, 2, 4, 9])
def test_int16_stops_at_the_first_zero_syndrome(cap: int):
    """As for float64 (``test_stops_at_the_first_zero_syndrome``): capping the iterations at
    ``k`` leaves the words that had stopped by then unchanged, and the others not ``ok``
    after exactly ``k`` iterations."""
    _, llr = awgn_blocks(648, "1/2", 1.5, 80, 171)
    full = decode_int16(648, "1/2", llr, 20)
    assert ((full.iterations >= 1) & (full.iterations <= 20)).all()
    assert (full.iterations[~full.ok] == 20).all() and full.ok.any() and not full.ok.all()
    capped = decode_int16(648, "1/2", llr, cap)
    stopped = full.ok & (full.iterations <= cap)
    np.testing.assert_array_equal(capped.ok, stopped)
    np.testing.assert_array_equal(capped.words[stopped], full.words[stopped])
    np.testing.assert_array_equal(capped.iterations[stopped], full.iterations[stopped])
    assert (capped.iterations[~stopped] == cap).all()


def test_int16_results_do_not_depend_on_batching(monkeypatch: pytest.MonkeyPatch):
    """Lanes are independent and a lane taking a new word forgets the old one's messages: one
    word at a time, and a shuffled batch split into 5 tasks of at most 3 lanes, give exactly
    what one batch gives (words, flags, iterations)."""
    _, llr = awgn_blocks(648, "1/2", 1.5, 40, 181)
    whole = decode_int16(648, "1/2", llr, 15)
    for b in range(0, 40, 7):
        single = decode_int16(648, "1/2", llr[b], 15)
        np.testing.assert_array_equal(single.words[0], whole.words[b])
        assert single.iterations[0] == whole.iterations[b] and single.ok[0] == whole.ok[b]
    order = np.random.default_rng(182).permutation(40)
    monkeypatch.setattr(bp_simd, "LANES", 3)
    monkeypatch.setattr(bp_simd, "TASKS_PER_THREAD", 5 * bp_simd.TASKS_PER_THREAD)
    shuffled = decode_int16(648, "1/2", llr[order], 15)
    np.testing.assert_array_equal(shuffled.words, whole.words[order])
    np.testing.assert_array_equal(shuffled.ok, whole.ok[order])
    np.testing.assert_array_equal(shuffled.iterations, whole.iterations[order])


def test_int16_settles_codewords_erasures_and_zero_iterations():
    """Channel decisions that already form a codeword take 0 iterations (``ok``); a word
    with more erasures than allowed comes back as its channel decisions, not ``ok``; with 0
    iterations every word is its channel decisions; ``positions`` picks bits."""
    codewords, llr = awgn_blocks(648, "1/2", 1.5, 6, 191)
    llr[0] = 4.0 * (1.0 - 2.0 * codewords[0])
    llr[0, ::50] *= 0.01  # weak but right
    llr[1, :400] = 0.0  # 400 erasures
    llr[1, 400:410] = np.nan  # 10 more
    layout = build_code(648, "1/2").layout
    result = bp_simd.decode_simd(layout, llr, 10, LAYERED_SCALE, max_erasures=409)
    np.testing.assert_array_equal(result.words[0], codewords[0])
    assert result.ok[0] and result.iterations[0] == 0
    np.testing.assert_array_equal(result.words[1], (llr[1] < 0).astype(np.uint8))
    assert not result.ok[1] and result.iterations[1] == 0
    assert (result.iterations[2:] > 0).all()
    allowed = bp_simd.decode_simd(layout, llr[1], 10, LAYERED_SCALE, max_erasures=410)
    assert allowed.iterations[0] > 0  # 410 erasures are not more than 410
    none = bp_simd.decode_simd(layout, llr, 0, LAYERED_SCALE)
    np.testing.assert_array_equal(none.words, (llr < 0).astype(np.uint8))
    assert not none.iterations.any() and none.ok[0] and not none.ok[1:].any()
    info = build_code(648, "1/2").code.info_positions
    picked = bp_simd.decode_simd(layout, llr, 10, LAYERED_SCALE, positions=info)
    full = bp_simd.decode_simd(layout, llr, 10, LAYERED_SCALE)
    np.testing.assert_array_equal(picked.words, full.words[:, info])
    np.testing.assert_array_equal(picked.ok, full.ok)


def test_int16_odd_inputs_never_crash():
    """NaN is an erasure (as 0), +-inf and huge values saturate, float32 and integer inputs
    are read as they are, long runs cannot overflow; shapes and empty input behave."""
    layout = build_code(648, "5/6").layout
    n = layout.n
    rng = np.random.default_rng(201)
    signs = rng.choice([-1.0, 1.0], (3, n))
    with_nan = rng.standard_normal((3, n)) * 4
    with_nan[:, ::7] = np.nan
    cases = {
        "zeros": np.zeros((3, n)),
        "huge": signs * 1e300,
        "inf": signs * np.inf,
        "nan": with_nan,
        "noise": rng.standard_normal((3, n)) * 100.0,
        "float32": rng.standard_normal((3, n)).astype(np.float32),
        "int": rng.integers(-5, 6, (3, n)),
    }
    for name, llr in cases.items():
        words, ok, used = bp_simd.decode_simd(layout, llr, 200, LAYERED_SCALE)
        assert words.shape == (3, n) and words.dtype == np.uint8, name
        assert ok.shape == used.shape == (3,) and ok.dtype == np.bool_, name
        assert used.dtype == np.int32 and ((used >= 0) & (used <= 200)).all(), name
        np.testing.assert_array_equal(ok, ~odd_checks(n, "5/6", words), err_msg=name)
    cleaned = np.nan_to_num(cases["nan"], nan=0.0)
    np.testing.assert_array_equal(
        bp_simd.decode_simd(layout, cases["nan"], 8, LAYERED_SCALE).words,
        bp_simd.decode_simd(layout, cleaned, 8, LAYERED_SCALE).words,
    )
    zeros = bp_simd.decode_simd(layout, cases["zeros"], 8, LAYERED_SCALE)
    assert zeros.ok.all() and not zeros.iterations.any()  # all-zero is a codeword
    empty = bp_simd.decode_simd(layout, np.zeros(0), 8, LAYERED_SCALE)
    assert empty.words.shape == (0, n) and empty.ok.shape == (0,)
    for bad in [
        dict(llr=np.zeros(n + 1), iterations=8, scale=LAYERED_SCALE),
        dict(llr=np.zeros(n), iterations=-1, scale=LAYERED_SCALE),
        dict(llr=np.zeros(n), iterations=8, scale=1.5),
        dict(llr=np.zeros(n), iterations=8, scale=LAYERED_SCALE, positions=[n]),
    ]:
        with pytest.raises(ValueError):
            bp_simd.decode_simd(layout, **bad)


def test_ldpc_precision_int16_config():
    """``precision: int16`` is a new, explicit setting: defaults and labels of existing
    configs are unchanged; it needs layered min-sum on the CPU; it runs through ``decode``."""
    config = ECCS.config({"name": "ldpc"})
    assert config.precision == "float64" and "precision" not in config.params()
    fast = {"name": "ldpc", "method": "min-sum", "schedule": "layered", "precision": "int16"}
    params = ECCS.config({**fast, "iterations": 10}).params()
    assert params["precision"] == "int16" and params["iterations"] == 10
    for bad in [{"method": "sum-product"}, {"schedule": "flooding"}, {"backend": "torch"}]:
        with pytest.raises(ScenarioError, match="int16"):
            ECCS.config({**fast, **bad})
    ecc = ECCS.build(ECCS.config({**fast, "n": 648, "iterations": 10}))
    codewords, llr = awgn_blocks(648, "1/2", 1.75, 12, 211)
    llr[1] = 5.0 * (1.0 - 2.0 * codewords[1])  # clean: no BP
    llr[2, :400] = 0.0  # more erasures than parity bits: not ok, no BP
    bits, ok = ecc.decode(llr.reshape(-1))
    info = build_code(648, "1/2").code.info_positions
    direct = bp_simd.decode_simd(
        build_code(648, "1/2").layout, llr, 10, LAYERED_SCALE, max_erasures=324
    )
    np.testing.assert_array_equal(bits, direct.words[:, info].reshape(-1))
    np.testing.assert_array_equal(ok, direct.ok)
    assert ok[1] and not ok[2] and not ok.all()
    float64 = ECCS.build(ECCS.config({**fast, "n": 648, "iterations": 10, "precision": "float64"}))
    bits64, ok64 = float64.decode(llr.reshape(-1))
    np.testing.assert_array_equal(ok, ok64)  # (these 12 words decide alike)
    np.testing.assert_array_equal(bits, bits64)
