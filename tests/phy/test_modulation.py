"""Modulation: Gray mapping, unit energy, hard and soft demapping, LLR sign and noise convention."""

from __future__ import annotations

import math

import numpy as np
import pytest
from commpy import MQAMModulator

from noisylink.errors import ScenarioError
from noisylink.phy.ecc.base import hard_decision
from noisylink.phy.modulation import (
    CHUNK_SYMBOLS,
    MODULATIONS,
    ModulationConfig,
    bits_per_symbol,
)

NAMES = ["bpsk", "qpsk", "16qam", "64qam"]


def modem(name: str, demapper: str = "exact"):
    return MODULATIONS.build(MODULATIONS.config({"name": name, "demapper": demapper}))


def random_bits(rng: np.random.Generator, name: str, n_symbols: int) -> np.ndarray:
    return rng.integers(0, 2, n_symbols * bits_per_symbol(name), dtype=np.uint8)


def test_registry_names_and_defaults() -> None:
    assert MODULATIONS.names() == sorted(NAMES)
    config = MODULATIONS.config({"name": "16qam"})
    assert config == ModulationConfig(name="16qam", demapper="exact")
    with pytest.raises(ScenarioError, match="demapper"):
        MODULATIONS.config({"name": "qpsk", "demapper": "approx"})
    with pytest.raises(ScenarioError, match="unknown setting"):
        MODULATIONS.config({"name": "qpsk", "order": 4})


@pytest.mark.parametrize(("name", "bps"), [("bpsk", 1), ("qpsk", 2), ("16qam", 4), ("64qam", 6)])
def test_bits_per_symbol(name: str, bps: int) -> None:
    assert bits_per_symbol(name) == bps
    assert modem(name).bits_per_symbol == bps


def test_bits_per_symbol_unknown_name() -> None:
    with pytest.raises(ValueError, match="256qam"):
        bits_per_symbol("256qam")


@pytest.mark.parametrize("name", NAMES)
def test_unit_energy_and_gray(name: str) -> None:
    m = modem(name)
    points, labels = m.constellation, m.bit_labels
    assert points.dtype == np.complex128
    assert np.mean(np.abs(points) ** 2) == pytest.approx(1.0, abs=1e-12)
    # Every label appears once.
    values = labels @ (1 << np.arange(m.bits_per_symbol)[::-1])
    assert sorted(values) == list(range(len(points)))
    # Gray: nearest neighbours (at the minimum distance) differ in exactly one bit.
    dist = np.abs(points[:, None] - points[None, :])
    np.fill_diagonal(dist, np.inf)
    neighbours = np.isclose(dist, dist.min())
    hamming = (labels[:, None, :] != labels[None, :, :]).sum(axis=2)
    assert neighbours.any(axis=1).all()
    assert (hamming[neighbours] == 1).all()


def test_bpsk_is_real_plus_minus_one() -> None:
    m = modem("bpsk")
    np.testing.assert_array_equal(
        m.modulate(np.array([0, 1, 1, 0], dtype=np.uint8)), [1, -1, -1, 1]
    )
    assert (m.constellation.imag == 0).all()


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("demapper", ["exact", "maxlog"])
def test_noiseless_round_trip_and_llr_sign(name: str, demapper: str) -> None:
    rng = np.random.default_rng(1)
    m = modem(name, demapper)
    bits = random_bits(rng, name, 500)
    symbols = m.modulate(bits)
    assert symbols.dtype == np.complex128
    assert symbols.shape == (500,)
    hard = m.demodulate_hard(symbols)
    assert hard.dtype == np.uint8
    np.testing.assert_array_equal(hard, bits)
    llr = m.llr(symbols, 0.1)
    assert llr.dtype == np.float64
    assert llr.shape == bits.shape
    # Project sign: bit 0 gives a positive LLR.
    assert (llr[bits == 0] > 0).all()
    assert (llr[bits == 1] < 0).all()
    np.testing.assert_array_equal(hard_decision(llr), bits)


@pytest.mark.parametrize("name", NAMES)
def test_noiseless_channel_gives_finite_llrs(name: str) -> None:
    m = modem(name)
    bits = random_bits(np.random.default_rng(2), name, 64)
    llr = m.llr(m.modulate(bits), 0.0)
    assert np.isfinite(llr).all()
    np.testing.assert_array_equal(hard_decision(llr), bits)


def test_modulate_rejects_bad_lengths_and_shapes() -> None:
    with pytest.raises(ValueError, match="multiple of 4"):
        modem("16qam").modulate(np.zeros(6, dtype=np.uint8))
    with pytest.raises(ValueError, match="one-dimensional"):
        modem("qpsk").modulate(np.zeros((2, 2), dtype=np.uint8))
    with pytest.raises(ValueError, match="noise_var"):
        modem("qpsk").llr(np.zeros(4, dtype=complex), np.ones(3))


def test_bpsk_llr_noise_convention() -> None:
    """N0 is the complex noise variance: the BPSK LLR is 4 Re(y) / N0 for both demappers."""
    y = np.array([0.3 + 0.2j, -1.7 - 0.5j, 0.0, 2.5 + 1.0j])
    for demapper in ("exact", "maxlog"):
        np.testing.assert_allclose(modem("bpsk", demapper).llr(y, 0.5), 4 * y.real / 0.5)


def brute_force_llr(y: complex, n0: float, points: np.ndarray, labels: np.ndarray) -> list[float]:
    """ln sum_{s: b_j=0} exp(-|y-s|²/N0) - ln sum_{s: b_j=1} exp(-|y-s|²/N0), one bit at a time."""
    out = []
    for j in range(labels.shape[1]):
        sums = [0.0, 0.0]
        for point, label in zip(points, labels, strict=True):
            sums[label[j]] += math.exp(-(abs(y - point) ** 2) / n0)
        out.append(math.log(sums[0]) - math.log(sums[1]))
    return out


@pytest.mark.parametrize("name", NAMES)
def test_exact_llr_matches_brute_force(name: str) -> None:
    rng = np.random.default_rng(3)
    m = modem(name)
    y = rng.normal(size=6) + 1j * rng.normal(size=6)
    n0 = rng.uniform(0.2, 2.0, size=6)
    expected = [
        value
        for yi, ni in zip(y, n0, strict=True)
        for value in brute_force_llr(complex(yi), float(ni), m.constellation, m.bit_labels)
    ]
    np.testing.assert_allclose(m.llr(y, n0), expected, rtol=1e-9, atol=1e-9)
    # A scalar N0 equals the same value per symbol.
    np.testing.assert_allclose(m.llr(y, 0.7), m.llr(y, np.full(6, 0.7)))


@pytest.mark.parametrize("name", NAMES)
def test_maxlog_is_commpy_soft_demodulate_with_n0(name: str) -> None:
    rng = np.random.default_rng(4)
    m = modem(name, "maxlog")
    y = rng.normal(size=50) + 1j * rng.normal(size=50)
    d = np.abs(y[:, None] - m.constellation[None, :]) ** 2
    expected = np.stack(
        [
            (d[:, m.bit_labels[:, j] == 1].min(1) - d[:, m.bit_labels[:, j] == 0].min(1)) / 0.3
            for j in range(m.bits_per_symbol)
        ],
        axis=1,
    ).reshape(-1)
    np.testing.assert_allclose(m.llr(y, 0.3), expected)
    # Its sign is the nearest-point (hard) decision.
    np.testing.assert_array_equal(hard_decision(m.llr(y, 0.3)), m.demodulate_hard(y))


@pytest.mark.parametrize("name", NAMES)
def test_exact_and_maxlog_agree_at_high_snr(name: str) -> None:
    """log-sum-exp over K = M/2 terms lies within [max, max + ln K], so the two demappers
    differ by at most ln(M/2) at any SNR; at high SNR that is small next to the LLRs."""
    rng = np.random.default_rng(5)
    exact, maxlog = modem(name, "exact"), modem(name, "maxlog")
    n0 = 10 ** (-20 / 10)  # Es/N0 = 20 dB
    x = exact.modulate(random_bits(rng, name, 2000))
    y = x + math.sqrt(n0 / 2) * (rng.normal(size=x.size) + 1j * rng.normal(size=x.size))
    l_exact, l_max = exact.llr(y, n0), maxlog.llr(y, n0)
    bound = math.log(max(len(exact.constellation) // 2, 1)) + 1e-9
    assert np.max(np.abs(l_exact - l_max)) <= bound
    confident = np.abs(l_max) > bound
    assert confident.mean() > 0.9
    assert (np.sign(l_exact[confident]) == np.sign(l_max[confident])).all()
    assert np.median(np.abs(l_exact - l_max) / np.abs(l_max)) < 1e-3


def test_long_inputs_are_demapped_in_chunks_consistently() -> None:
    rng = np.random.default_rng(6)
    m = modem("16qam")
    n = CHUNK_SYMBOLS + 1234
    y = rng.normal(size=n) + 1j * rng.normal(size=n)
    n0 = rng.uniform(0.1, 1.0, size=n)
    whole = m.llr(y, n0)
    split = np.concatenate([m.llr(y[:1000], n0[:1000]), m.llr(y[1000:], n0[1000:])])
    np.testing.assert_allclose(whole, split)
    hard = m.demodulate_hard(y)
    np.testing.assert_array_equal(hard[:4000], m.demodulate_hard(y[:1000]))


def test_qam_uses_commpy_constellation() -> None:
    np.testing.assert_array_equal(modem("64qam").constellation, MQAMModulator(64).constellation)
