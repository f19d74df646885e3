"""Channels against theory, with seeded RNGs and tolerances of Z standard errors.

Each tolerance is ``Z`` times the standard error of the estimate (binomial for independent
errors, Markov-corrected for Gilbert-Elliott, empirical over independent blocks for block
fading). Where an analytic BER is an approximation, the SNRs are chosen where its error is
below 1e-6 relative (checked against the exact Gray square-QAM BER), far inside the tolerance.
"""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
from scipy.special import erfc

from noisylink.errors import ScenarioError
from noisylink.phy.channels import (
    AWGN,
    BEC,
    BSC,
    CHANNELS,
    LLR_CAP,
    AWGNConfig,
    BECConfig,
    BSCConfig,
    GilbertElliott,
    GilbertElliottConfig,
    Rayleigh,
    RayleighConfig,
)
from noisylink.phy.ecc.base import hard_decision
from noisylink.phy.modulation import MODULATIONS, bits_per_symbol

Z = 4.5  # standard errors allowed; seeds are fixed, so the tests are deterministic


def q_function(x: float) -> float:
    return 0.5 * erfc(x / math.sqrt(2))


def binomial_se(p: float, n: int) -> float:
    return math.sqrt(p * (1 - p) / n)


def random_bits(seed: int, n: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 2, n, dtype=np.uint8)


def chunked(channel_factory, x: np.ndarray, seed: int, sizes: list[int]):
    """Send ``x`` through a fresh channel in chunks of the given sizes (the rest at the end)."""
    channel, rng = channel_factory(), np.random.default_rng(seed)
    bounds = np.cumsum([0, *sizes, x.size - sum(sizes)])
    return [channel.transmit(x[a:b], rng) for a, b in itertools.pairwise(bounds)]


# --- registry and configs ---------------------------------------------------------------


def test_every_channel_is_registered_with_kind_and_sweep_params() -> None:
    assert CHANNELS.names() == ["awgn", "bec", "bsc", "gilbert_elliott", "rayleigh"]
    kinds = {"awgn": "symbols", "rayleigh": "symbols", "bsc": "bits", "bec": "bits"}
    kinds["gilbert_elliott"] = "bits"
    for name, kind in kinds.items():
        entry = CHANNELS.entry(name)
        assert entry.factory.kind == kind
        fields = entry.config_model.model_fields
        assert entry.config_model.sweep_params
        assert all(param in fields for param in entry.config_model.sweep_params)


def test_snr_needs_exactly_one_form() -> None:
    with pytest.raises(ScenarioError, match="exactly one of esn0_db or ebn0_db"):
        CHANNELS.config({"name": "awgn"})
    with pytest.raises(ScenarioError, match="exactly one of esn0_db or ebn0_db"):
        CHANNELS.config({"name": "rayleigh", "esn0_db": 3, "ebn0_db": 3})
    config = CHANNELS.config({"name": "awgn", "ebn0_db": 4})
    assert config.label() == "awgn(ebn0_db=4.0)"


def test_ebn0_converts_with_code_rate_and_bits_per_symbol() -> None:
    config = AWGNConfig(ebn0_db=3.0)
    channel = AWGN(config, bits_per_symbol=4, code_rate=0.5)
    assert channel.noise_var == pytest.approx(10 ** (-(3.0 + 10 * math.log10(2.0)) / 10))
    assert AWGN(AWGNConfig(esn0_db=3.0), 4, 0.5).noise_var == pytest.approx(10**-0.3)


def test_bit_channel_settings_are_validated() -> None:
    with pytest.raises(ScenarioError, match=r"channel\.ber: "):
        CHANNELS.config({"name": "bsc", "ber": 0.7})
    with pytest.raises(ScenarioError, match=r"channel\.p: "):
        CHANNELS.config({"name": "bec", "p": -0.1})
    with pytest.raises(ScenarioError, match="unknown setting"):
        CHANNELS.config({"name": "bsc", "p": 0.1})


# --- BSC --------------------------------------------------------------------------------


def test_bsc_flip_rate_and_llrs() -> None:
    p, n = 0.01, 1_000_000
    bits = random_bits(0, n)
    llr = BSC(BSCConfig(ber=p)).transmit(bits, np.random.default_rng(1))
    assert llr.dtype == np.float64
    assert llr.shape == (n,)
    received = hard_decision(llr)
    rate = np.mean(received != bits)
    assert abs(rate - p) < Z * binomial_se(p, n)
    np.testing.assert_allclose(np.abs(llr), math.log((1 - p) / p))


def test_bsc_extreme_probabilities_give_finite_llrs() -> None:
    bits = random_bits(2, 1000)
    perfect = BSC(BSCConfig(ber=0.0)).transmit(bits, np.random.default_rng(3))
    np.testing.assert_array_equal(perfect, LLR_CAP * (1.0 - 2.0 * bits))
    useless = BSC(BSCConfig(ber=0.5)).transmit(bits, np.random.default_rng(3))
    assert np.all(useless != 0) and np.all(np.abs(useless) < 1e-6)


def test_bsc_chunking_is_exact() -> None:
    bits = random_bits(4, 10_000)
    whole = BSC(BSCConfig(ber=0.1)).transmit(bits, np.random.default_rng(5))
    parts = chunked(lambda: BSC(BSCConfig(ber=0.1)), bits, 5, [17, 0, 4000, 1])
    np.testing.assert_array_equal(np.concatenate(parts), whole)


# --- BEC --------------------------------------------------------------------------------


def test_bec_erasure_fraction_and_llrs() -> None:
    p, n = 0.05, 500_000
    bits = random_bits(6, n)
    llr = BEC(BECConfig(p=p)).transmit(bits, np.random.default_rng(7))
    erased = llr == 0
    assert abs(erased.mean() - p) < Z * binomial_se(p, n)
    np.testing.assert_array_equal(llr[~erased], LLR_CAP * (1.0 - 2.0 * bits[~erased]))


# --- AWGN -------------------------------------------------------------------------------


def test_awgn_noise_variance_is_n0_complex_and_half_per_dimension() -> None:
    n, esn0_db = 400_000, 5.0
    channel = AWGN(AWGNConfig(esn0_db=esn0_db))
    x = np.ones(n, dtype=np.complex128)
    y, noise_var = channel.transmit(x, np.random.default_rng(8))
    n0 = 10 ** (-esn0_db / 10)
    assert noise_var == pytest.approx(n0)
    noise = y - x
    # |noise|² is exponential with mean N0 (sd N0); each real dimension Gaussian with
    # variance N0/2 (the sample variance has sd N0/2 * sqrt(2/n)).
    assert abs(np.mean(np.abs(noise) ** 2) - n0) < Z * n0 / math.sqrt(n)
    for part in (noise.real, noise.imag):
        assert abs(np.mean(part**2) - n0 / 2) < Z * n0 / 2 * math.sqrt(2 / n)
    assert abs(np.mean(noise.real * noise.imag)) < Z * n0 / 2 / math.sqrt(n)


def gray_qam_ber(m: int, ebn0_db: float) -> float:
    """Uncoded BER of Gray BPSK/QPSK (exact) and square M-QAM (nearest-neighbour approx)."""
    g = 10 ** (ebn0_db / 10)
    if m == 2:
        return q_function(math.sqrt(2 * g))
    k = math.log2(m)
    return 4 / k * (1 - 1 / math.sqrt(m)) * q_function(math.sqrt(3 * k * g / (m - 1)))


@pytest.mark.parametrize(
    ("name", "ebn0_db"),
    [
        ("bpsk", 4.0),
        ("bpsk", 7.0),
        ("qpsk", 4.0),
        ("qpsk", 7.0),
        ("16qam", 8.0),
        ("16qam", 10.0),
        ("64qam", 12.0),
        ("64qam", 14.0),
    ],
)
def test_awgn_uncoded_ber_matches_theory(name: str, ebn0_db: float) -> None:
    bps = bits_per_symbol(name)
    n = 1_200_000  # a multiple of 1, 2, 4 and 6
    modem = MODULATIONS.build(MODULATIONS.config({"name": name}))
    bits = random_bits(9, n)
    channel = AWGN(AWGNConfig(ebn0_db=ebn0_db), bits_per_symbol=bps, code_rate=1.0)
    y, _ = channel.transmit(modem.modulate(bits), np.random.default_rng(10))
    ber = np.mean(modem.demodulate_hard(y) != bits)
    theory = gray_qam_ber(2 if name == "bpsk" else 2**bps, ebn0_db)
    assert abs(ber - theory) < Z * binomial_se(theory, n), (ber, theory)


def test_awgn_chunking_is_exact() -> None:
    x = np.exp(2j * np.pi * np.random.default_rng(11).random(5000))
    make = lambda: AWGN(AWGNConfig(esn0_db=3.0))  # noqa: E731
    whole, _ = make().transmit(x, np.random.default_rng(12))
    parts = chunked(make, x, 12, [1, 999, 0, 2500])
    np.testing.assert_array_equal(np.concatenate([y for y, _ in parts]), whole)


# --- Rayleigh ---------------------------------------------------------------------------


def rayleigh_bpsk_ber(esn0_db: float) -> float:
    g = 10 ** (esn0_db / 10)
    return 0.5 * (1 - math.sqrt(g / (1 + g)))


@pytest.mark.parametrize("esn0_db", [5.0, 15.0])
def test_rayleigh_bpsk_ber_matches_theory(esn0_db: float) -> None:
    n = 600_000
    bits = random_bits(13, n)
    x = 1.0 - 2.0 * bits.astype(np.complex128)
    y, noise_var = Rayleigh(RayleighConfig(esn0_db=esn0_db)).transmit(x, np.random.default_rng(14))
    ber = np.mean((y.real < 0) != bits)
    theory = rayleigh_bpsk_ber(esn0_db)
    assert abs(ber - theory) < Z * binomial_se(theory, n), (ber, theory)
    # Equalised noise has variance noise_var per symbol: |y - x|² / noise_var ~ Exp(1).
    assert abs(np.mean(np.abs(y - x) ** 2 / noise_var) - 1) < Z / math.sqrt(n)
    # E|h|² = 1, and |h|² = N0 / noise_var is Exp(1).
    n0 = 10 ** (-esn0_db / 10)
    assert abs(np.mean(n0 / noise_var) - 1) < Z / math.sqrt(n)


def test_rayleigh_block_fading_holds_per_block_and_matches_theory() -> None:
    block, blocks, esn0_db = 50, 12_000, 10.0
    n = block * blocks
    bits = random_bits(15, n)
    x = 1.0 - 2.0 * bits.astype(np.complex128)
    y, noise_var = Rayleigh(RayleighConfig(esn0_db=esn0_db, block_symbols=block)).transmit(
        x, np.random.default_rng(16)
    )
    per_block = noise_var.reshape(blocks, block)
    np.testing.assert_array_equal(per_block, per_block[:, :1].repeat(block, axis=1))
    assert np.all(per_block[1:, 0] != per_block[:-1, 0])
    # Errors are correlated within a block: the standard error comes from the spread of
    # the independent per-block error rates.
    block_rates = ((y.real < 0) != bits).reshape(blocks, block).mean(axis=1)
    se = block_rates.std(ddof=1) / math.sqrt(blocks)
    theory = rayleigh_bpsk_ber(esn0_db)
    assert abs(block_rates.mean() - theory) < Z * se, (block_rates.mean(), theory, se)


def test_rayleigh_blocks_span_chunks_exactly() -> None:
    x = np.exp(2j * np.pi * np.random.default_rng(17).random(3000))
    make = lambda: Rayleigh(RayleighConfig(esn0_db=8.0, block_symbols=7))  # noqa: E731
    whole_y, whole_var = make().transmit(x, np.random.default_rng(18))
    parts = chunked(make, x, 18, [3, 0, 5, 1, 1000, 13])
    np.testing.assert_array_equal(np.concatenate([y for y, _ in parts]), whole_y)
    np.testing.assert_array_equal(np.concatenate([v for _, v in parts]), whole_var)


# --- Gilbert-Elliott --------------------------------------------------------------------


def test_gilbert_elliott_parametrisations() -> None:
    config = GilbertElliottConfig(mean_ber=1e-3, burst_length=10, e_good=0.0, e_bad=0.5)
    p_gb, p_bg = config.transitions()
    assert p_bg == pytest.approx(0.1)
    assert p_gb / (p_gb + p_bg) == pytest.approx(2e-3)
    assert config.error_rate() == pytest.approx(1e-3)
    chain = GilbertElliottConfig(p_gb=p_gb, p_bg=p_bg)
    assert chain.error_rate() == pytest.approx(1e-3)
    assert chain.label() == f"gilbert_elliott(p_gb={p_gb},p_bg=0.1,e_good=0.0,e_bad=0.5)"


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"p_gb": 0.1, "p_bg": 0.1, "mean_ber": 0.01}, "not settings of both"),
        ({}, "needs p_gb and p_bg, or mean_ber and burst_length"),
        ({"p_gb": 0.1}, "p_gb and p_bg go together"),
        ({"burst_length": 5}, "mean_ber and burst_length go together"),
        ({"p_gb": 0.1, "p_bg": 0.0}, "p_bg must be > 0"),
        ({"mean_ber": 0.6, "burst_length": 5}, r"mean_ber must lie in \[e_good, e_bad\)"),
        ({"mean_ber": 0.4, "burst_length": 1}, "needs p_gb > 1"),
        ({"mean_ber": 0.01, "burst_length": 0.5}, "burst_length"),
    ],
)
def test_gilbert_elliott_rejects_bad_settings(settings: dict, message: str) -> None:
    with pytest.raises(ScenarioError, match=message):
        CHANNELS.config({"name": "gilbert_elliott", **settings})


def markov_ber_se(config: GilbertElliottConfig, n: int) -> float:
    """Standard error of the mean error rate over ``n`` bits of a stationary GE channel:
    binomial variance plus the state autocorrelation, Var = [m(1-m) + (e_b-e_g)² pi_B pi_G
    2λ/(1-λ)] / n with λ = 1 - p_gb - p_bg."""
    p_gb, p_bg = config.transitions()
    pi_b, m = config.stationary_bad(), config.error_rate()
    lam = 1 - p_gb - p_bg
    de = config.e_bad - config.e_good
    variance = m * (1 - m) + de**2 * pi_b * (1 - pi_b) * 2 * lam / (1 - lam)
    return math.sqrt(variance / n)


def test_gilbert_elliott_mean_ber_and_llrs() -> None:
    config = GilbertElliottConfig(p_gb=0.002, p_bg=0.05, e_good=0.001, e_bad=0.5)
    n = 2_000_000
    bits = random_bits(19, n)
    llr = GilbertElliott(config).transmit(bits, np.random.default_rng(20))
    ber = np.mean(hard_decision(llr) != bits)
    m = config.error_rate()
    assert abs(ber - m) < Z * markov_ber_se(config, n), (ber, m)
    np.testing.assert_allclose(np.abs(llr), math.log((1 - m) / m))


def runs(flags: np.ndarray, value: bool) -> np.ndarray:
    """Lengths of the runs of ``value`` in ``flags`` that do not touch either end."""
    padded = np.concatenate([[not value], flags, [not value]]).astype(np.int8)
    edges = np.flatnonzero(np.diff(padded))
    starts, stops = edges[::2], edges[1::2]
    inner = (starts > 0) & (stops < flags.size)
    return (stops - starts)[inner]


def test_gilbert_elliott_bursts_are_geometric_with_mean_burst_length() -> None:
    """With e_good = 0 and e_bad = 1 the errors are the bad state itself: runs of errors have
    mean 1/p_bg (= burst_length) and gaps mean 1/p_gb."""
    config = GilbertElliottConfig(mean_ber=0.05, burst_length=8.0, e_good=0.0, e_bad=1.0)
    p_gb, p_bg = config.transitions()
    channel = GilbertElliott(config)
    errors = channel.errors(2_000_000, np.random.default_rng(21))
    bursts, gaps = runs(errors, True), runs(errors, False)
    for lengths, p in ((bursts, p_bg), (gaps, p_gb)):
        se = math.sqrt((1 - p) / p**2 / lengths.size)  # geometric: var = (1-p)/p²
        assert abs(lengths.mean() - 1 / p) < Z * se, (lengths.mean(), 1 / p)
    assert abs(errors.mean() - 0.05) < Z * markov_ber_se(config, errors.size)


def test_gilbert_elliott_transition_probabilities() -> None:
    """With e_good = 0 and e_bad = 1, P(bad | bad before) = 1 - p_bg, P(bad | good) = p_gb."""
    config = GilbertElliottConfig(p_gb=0.1, p_bg=0.3, e_good=0.0, e_bad=1.0)
    bad = GilbertElliott(config).errors(1_000_000, np.random.default_rng(27))
    before, after = bad[:-1], bad[1:]
    for given, expected in ((before, 1 - 0.3), (~before, 0.1)):
        rate = after[given].mean()
        assert abs(rate - expected) < Z * binomial_se(expected, int(given.sum())), rate


def test_gilbert_elliott_initial_state_is_stationary() -> None:
    config = GilbertElliottConfig(p_gb=0.3, p_bg=0.7, e_good=0.0, e_bad=1.0)
    streams = 4000
    seeds = np.random.SeedSequence(22).spawn(streams)
    first = [GilbertElliott(config).errors(1, np.random.default_rng(s))[0] for s in seeds]
    pi_b = config.stationary_bad()
    assert abs(np.mean(first) - pi_b) < Z * binomial_se(pi_b, streams)


def test_gilbert_elliott_chunking_is_exact_and_carries_state() -> None:
    config = GilbertElliottConfig(mean_ber=0.02, burst_length=50.0)
    bits = random_bits(23, 200_000)
    whole_channel = GilbertElliott(config)
    whole = whole_channel.transmit(bits, np.random.default_rng(24))
    sizes = list(np.random.default_rng(25).integers(0, 3000, 100))  # bursts cross chunk edges
    parts = chunked(lambda: GilbertElliott(config), bits, 24, sizes)
    np.testing.assert_array_equal(np.concatenate(parts), whole)


def test_gilbert_elliott_state_persists_between_calls() -> None:
    """A channel left in the bad state starts the next call there (e_bad = 1, p_bg tiny)."""
    config = GilbertElliottConfig(p_gb=0.5, p_bg=1e-9, e_good=0.0, e_bad=1.0)
    channel, rng = GilbertElliott(config), np.random.default_rng(26)
    first = channel.errors(100, rng)
    assert first[-1] and channel.bad
    assert channel.errors(1000, rng).all()
