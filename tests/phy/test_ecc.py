"""ECC layer: contract for every registered code, correction power, failure detection, LLR sign."""

from __future__ import annotations

import subprocess
import sys
from typing import Any

import numpy as np
import pytest
from commpy import LDPCCode, ReedSolomonCode

from noisylink.errors import ScenarioError
from noisylink.phy.ecc import ECCS, Protection
from noisylink.phy.ecc.base import ECC, LLR_LIMIT, clean_llr
from noisylink.phy.ecc.ldpc.code import build_code
from noisylink.phy.ecc.ldpc.ieee80211n import LIFTING, base_matrix, codes
from noisylink.phy.ecc.reed_solomon.code import rs_encode_blocks, rs_syndromes

# Representative settings for every registered code (small blocks keep the tests fast).
REPRESENTATIVES: dict[str, list[dict[str, Any]]] = {
    "none": [{}],
    "repetition": [{"n": 3}, {"n": 4}],
    "rs": [{"k": 223}, {"k": 239}, {"k": 191}, {"k": 223, "shortened": True}],
    "ldpc": [{"n": 648, "rate": "1/2"}, {"n": 1296, "rate": "3/4"}, {"n": 1944, "rate": "5/6"},
             {"n": 648, "rate": "3/4", "shortened": True}],
    "conv": [{"block_bits": 200}],
    "concatenated": [
        {"depth": 1}, {"depth": 2, "inner": {"name": "ldpc", "n": 648, "rate": "3/4"}}
    ],
}
CASES = [(name, params) for name, variants in REPRESENTATIVES.items() for params in variants]
CASE_IDS = [f"{name}-{'-'.join(map(str, params.values())) or 'default'}" for name, params in CASES]


def build(name: str, **params: Any) -> ECC:
    return ECCS.build(ECCS.config({"name": name, **params}))


def expected_rate(name: str, params: dict[str, Any]) -> float:
    if name == "none":
        return 1.0
    if name == "repetition":
        return 1.0 / params["n"]
    if name == "rs":
        return params["k"] / 255
    if name == "ldpc":
        num, den = params["rate"].split("/")
        return int(num) / int(den)
    if name == "concatenated":  # RS(255, 223) x depth, then whole inner blocks
        frame_bits = 8 * 255 * params["depth"]
        inner = params.get("inner", {"name": "conv"})
        if inner["name"] == "conv":
            n = 2 * (frame_bits + 6)
        else:
            inner_k = round(expected_rate("ldpc", inner) * inner["n"])
            n = -(-frame_bits // inner_k) * inner["n"]
        return 8 * 223 * params["depth"] / n
    return params["block_bits"] / (2 * (params["block_bits"] + 6))


def strong_llr(coded: np.ndarray, magnitude: float = 8.0) -> np.ndarray:
    """Noise-free LLRs under the project sign: bit 0 -> +magnitude, bit 1 -> -magnitude."""
    return magnitude * (1.0 - 2.0 * coded.astype(np.float64))


def awgn_llr(coded: np.ndarray, ebn0_db: float, rate: float, rng: np.random.Generator):
    """BPSK (0 -> +1) over AWGN at Eb/N0, exact LLRs 2y/sigma^2."""
    sigma = np.sqrt(1.0 / (2.0 * rate * 10.0 ** (ebn0_db / 10.0)))
    y = 1.0 - 2.0 * coded + sigma * rng.standard_normal(coded.size)
    return 2.0 * y / sigma**2


# --- the contract, for every registered code ------------------------------------------------


def test_every_registered_code_is_covered():
    """Every code, that is every entry but the protection schemes over codes (``unequal``,
    tested in test_unequal_protection.py)."""
    codes = {name for name in ECCS.names()
             if not issubclass(ECCS.entry(name).factory, Protection)}  # type: ignore[arg-type]
    assert set(REPRESENTATIVES) == codes


@pytest.mark.parametrize(("name", "params"), CASES, ids=CASE_IDS)
def test_round_trip_without_errors(name: str, params: dict[str, Any]):
    rng = np.random.default_rng(1)
    ecc = build(name, **params)
    assert ecc.rate == pytest.approx(ecc.k / ecc.n)
    assert ecc.rate == pytest.approx(expected_rate(name, params), rel=1e-9)
    for n_bits in (1, ecc.k, 2 * ecc.k + ecc.k // 2 + 1):
        bits = rng.integers(0, 2, n_bits).astype(np.uint8)
        blocks = -(-n_bits // ecc.k)
        coded = ecc.encode(bits)
        unsent = blocks * ecc.k - n_bits if params.get("shortened") else 0  # the padding
        assert coded.dtype == np.uint8 and coded.shape == (blocks * ecc.n - unsent,)
        assert ecc.coded_bits(n_bits) == coded.size
        decoded, ok = ecc.decode(strong_llr(coded))
        assert decoded.dtype == np.uint8 and decoded.shape == (blocks * ecc.k,)
        assert ok.dtype == np.bool_ and ok.shape == (blocks,) and ok.all()
        np.testing.assert_array_equal(decoded[:n_bits], bits)
        assert not decoded[n_bits:].any()  # zero padding
    empty = ecc.encode(np.zeros(0, dtype=np.uint8))  # empty -> one block
    assert empty.shape == (ecc.n - (ecc.k if params.get("shortened") else 0),)


@pytest.mark.parametrize(("name", "params"), CASES, ids=CASE_IDS)
def test_decoding_garbage_never_raises(name: str, params: dict[str, Any]):
    rng = np.random.default_rng(2)
    ecc = build(name, **params)
    blocks = 2
    size = blocks * ecc.n
    garbage = [
        np.zeros(size),
        np.full(size, 1e300) * rng.choice([-1.0, 1.0], size),
        np.full(size, np.inf) * rng.choice([-1.0, 1.0], size),
        rng.standard_normal(size) * 100.0,
        rng.standard_normal(size).astype(np.float32),
        np.where(rng.random(size) < 0.5, 0.0, rng.standard_normal(size) * 1e-300),
    ]
    for llr in garbage:
        decoded, ok = ecc.decode(llr)
        assert decoded.shape == (blocks * ecc.k,) and ok.shape == (blocks,)
        assert set(np.unique(decoded)) <= {0, 1}
    if params.get("shortened"):  # every length a shortened block can have, and shorter
        for size in (ecc.n - ecc.k, ecc.n - ecc.k + 1, ecc.n + 5, 1, 0):
            decoded, ok = ecc.decode(rng.standard_normal(size))
            assert decoded.shape == (ecc.k * max(1, -(-size // ecc.n)),)


def test_clean_llr_erases_nan_and_clips_infinities():
    llr = np.array([[np.nan, np.inf, -np.inf], [2e6, -3.5, -0.0]], dtype=np.float32)
    cleaned = clean_llr(llr)
    assert cleaned.dtype == np.float64 and cleaned.shape == (2, 3)
    assert cleaned.flags.c_contiguous
    expected = [[0.0, LLR_LIMIT, -LLR_LIMIT], [LLR_LIMIT, -3.5, -0.0]]
    np.testing.assert_array_equal(cleaned, expected)
    assert np.isnan(llr[0, 0])  # the input is left alone
    plain = np.array([1.0, -2.0])
    assert not np.shares_memory(clean_llr(plain), plain)  # always a fresh copy


@pytest.mark.parametrize(("name", "params"), CASES, ids=CASE_IDS)
def test_every_code_cleans_llrs_alike(name: str, params: dict[str, Any]):
    """One cleaning for all: NaN decodes as an erasure (0), +-inf as +-LLR_LIMIT."""
    rng = np.random.default_rng(3)
    ecc = build(name, **params)
    size = 2 * ecc.n
    llr = rng.standard_normal(size) * 4.0
    kind = rng.random(size)
    odd = np.select([kind < 0.1, kind < 0.2, kind < 0.3], [np.nan, np.inf, -np.inf], llr)
    plain = np.select([kind < 0.1, kind < 0.2, kind < 0.3], [0.0, LLR_LIMIT, -LLR_LIMIT], llr)
    for got, expected in zip(ecc.decode(odd), ecc.decode(plain), strict=True):
        np.testing.assert_array_equal(got, expected)


@pytest.mark.slow
def test_numba_decoders_do_not_import_torch():
    """The torch modules are imported only when the torch backend is chosen."""
    script = (
        "import sys\n"
        "import numpy as np\n"
        "from noisylink.phy.ecc import ECCS\n"
        "for settings in ({'name': 'rs'}, {'name': 'ldpc', 'n': 648}, {'name': 'conv'}):\n"
        "    ecc = ECCS.build(ECCS.config({**settings, 'backend': 'numba'}))\n"
        "    ecc.decode(-np.ones(ecc.n))\n"
        "assert 'torch' not in sys.modules, 'torch was imported'\n"
    )
    subprocess.run([sys.executable, "-c", script], check=True, timeout=600)


@pytest.mark.parametrize("name", ["rs", "ldpc"])
def test_codes_that_can_tell_refuse_an_all_erased_block(name: str):
    ecc = build(name)
    _, ok = ecc.decode(np.zeros(3 * ecc.n))
    assert not ok.any()


@pytest.mark.parametrize(
    "settings",
    [
        {"name": "rs", "k": 0},
        {"name": "rs", "k": 254},
        {"name": "rs", "k": 223, "t": 16},
        {"name": "ldpc", "n": 1000},
        {"name": "ldpc", "rate": "1/3"},
        {"name": "ldpc", "iterations": 0},
        {"name": "ldpc", "method": "bit-flip"},
        {"name": "repetition", "n": 1},
        {"name": "conv", "block_bits": 0},
        {"name": "none", "k": 8},
        {"name": "concatenated", "outer": {"name": "rs", "shortened": True}},
        {"name": "rs", "shortened": "sometimes"},
    ],
)
def test_bad_settings_are_rejected(settings: dict[str, Any]):
    with pytest.raises(ScenarioError):
        ECCS.config(settings)


def test_defaults_match_the_design():
    assert ECCS.config({"name": "rs"}).params() == {"k": 223}
    assert ECCS.config({"name": "ldpc"}).params() == {
        "n": 1944,
        "rate": "1/2",
        "iterations": 20,
        "method": "sum-product",
    }
    assert ECCS.config({"name": "conv"}).params() == {"block_bits": 2048}
    assert ECCS.config({"name": "repetition"}).params() == {"n": 3}
    assert build("conv").n == 2 * (2048 + 6)


# --- LLR sign, pinned per wrapped decoder ---------------------------------------------------


@pytest.mark.parametrize("name", ["repetition", "rs", "ldpc", "conv"])
def test_llr_sign_positive_means_zero(name: str):
    """All-ones info word, LLR = +4(1 - 2 bit), a few weak wrong values: decodes right;
    the opposite sign convention (negated LLRs) does not give the word back."""
    ecc = build(name)
    info = np.ones(ecc.k, dtype=np.uint8)
    coded = ecc.encode(info)
    llr = strong_llr(coded, 4.0)
    flips = np.linspace(0, ecc.n - 1, 1 if name == "repetition" else 4).astype(int)
    llr[flips] = -0.5 * np.sign(llr[flips])
    decoded, ok = ecc.decode(llr)
    np.testing.assert_array_equal(decoded, info)
    assert ok.all()
    wrong, _ = ecc.decode(-llr)
    assert not np.array_equal(wrong, info)


# --- repetition and none --------------------------------------------------------------------


def test_repetition_majority_and_soft_sum():
    rng = np.random.default_rng(4)
    ecc = build("repetition", n=3)
    bits = rng.integers(0, 2, 500).astype(np.uint8)
    coded = ecc.encode(bits)
    np.testing.assert_array_equal(coded.reshape(-1, 3), np.repeat(bits[:, None], 3, axis=1))
    llr = strong_llr(coded, 2.0)
    one_wrong_copy = np.arange(500) * 3 + rng.integers(0, 3, 500)
    llr[one_wrong_copy] *= -1.0  # majority still right
    np.testing.assert_array_equal(ecc.decode(llr)[0], bits)
    soft = strong_llr(coded, 1.0).reshape(-1, 3)
    soft[:, 0] *= -1.0
    soft[:, 1] *= -1.0  # two weak wrong copies ...
    soft[:, 2] *= 5.0  # ... outweighed by one strong right copy
    np.testing.assert_array_equal(ecc.decode(soft.reshape(-1))[0], bits)


def test_none_is_hard_decision():
    ecc = build("none")
    decoded, ok = ecc.decode(np.array([1.0, -1.0, 0.0, -0.1, 3.0, -7.0, 2.0, 2.0]))
    np.testing.assert_array_equal(decoded, [0, 1, 0, 1, 0, 1, 0, 0])
    assert ok.all()


# --- Reed-Solomon ---------------------------------------------------------------------------


@pytest.mark.parametrize("k", [1, 191, 223, 239, 252, 253])
def test_rs_fast_encoder_and_syndromes_match_commpy(k: int):
    rng = np.random.default_rng(5)
    messages = rng.integers(0, 256, (3, k))
    code = ReedSolomonCode(8, k)
    expected = np.array([code.encode(message) for message in messages])
    codewords = rs_encode_blocks(k, messages)
    np.testing.assert_array_equal(codewords, expected)
    assert not rs_syndromes(k, codewords).any()
    corrupted = codewords.copy()
    corrupted[:, rng.integers(0, 255)] ^= 0x5A
    assert rs_syndromes(k, corrupted).any(axis=1).all()


def byte_llr(codewords: np.ndarray) -> np.ndarray:
    """Strong LLRs ``[B, 255, 8]`` for byte codewords."""
    return strong_llr(np.unpackbits(codewords.astype(np.uint8), axis=1)).reshape(-1, 255, 8)


@pytest.mark.parametrize("k", [223, 239])
def test_rs_corrects_t_byte_errors(k: int):
    rng = np.random.default_rng(6)
    ecc = build("rs", k=k)
    t = (255 - k) // 2
    bits = rng.integers(0, 2, 8 * ecc.k).astype(np.uint8)
    codewords = np.packbits(ecc.encode(bits).reshape(-1, 2040), axis=1).astype(np.int64)
    received = codewords.copy()
    for row in received:
        where = rng.choice(255, t, replace=False)
        row[where] ^= rng.integers(1, 256, t)
    decoded, ok = ecc.decode(byte_llr(received).reshape(-1))
    np.testing.assert_array_equal(decoded, bits)
    assert ok.all()


def test_rs_corrects_n_minus_k_erasures():
    rng = np.random.default_rng(7)
    ecc = build("rs", k=223)
    bits = rng.integers(0, 2, 6 * ecc.k).astype(np.uint8)
    llr = strong_llr(ecc.encode(bits)).reshape(-1, 255, 8)
    for block in llr:
        where = rng.choice(255, 32, replace=False)
        block[where] *= rng.choice([-1.0, 1.0], (32, 8))  # garbage in the erased bytes ...
        block[where, rng.integers(0, 8, 32)] = 0.0  # ... marked by one zero LLR each
    decoded, ok = ecc.decode(llr.reshape(-1))
    np.testing.assert_array_equal(decoded, bits)
    assert ok.all()
    llr[0, :33, 0] = 0.0  # more erasures than n - k: cannot be decoded
    assert not ecc.decode(llr.reshape(-1))[1][0]


@pytest.mark.parametrize("backend", ["reference", "numba", "torch"])
def test_rs_erasures_with_errors(backend: str):
    """10 erased bytes plus 5 unknown byte errors (2·5 + 10 <= 32): ours decodes errors and
    erasures in one pass; the reference's erasure decoder fails the codeword check and its
    errors-only fallback (at most 15 <= t wrong bytes) recovers."""
    rng = np.random.default_rng(14)
    ecc = build("rs", k=223, backend=backend)
    bits = rng.integers(0, 2, 4 * ecc.k).astype(np.uint8)
    llr = strong_llr(ecc.encode(bits)).reshape(-1, 255, 8)
    for block in llr:
        where = rng.choice(255, 15, replace=False)
        block[where[:10], 0] = 0.0
        block[where[10:]] *= -1.0
    decoded, ok = ecc.decode(llr.reshape(-1))
    np.testing.assert_array_equal(decoded, bits)
    assert ok.all()


def test_rs_beyond_capability_is_detected():
    rng = np.random.default_rng(8)
    ecc = build("rs", k=223)
    blocks = 20
    bits = rng.integers(0, 2, blocks * ecc.k).astype(np.uint8)
    received = np.packbits(ecc.encode(bits).reshape(-1, 2040), axis=1).astype(np.int64)
    for row in received:
        where = rng.choice(255, 16 + 5, replace=False)
        row[where] ^= rng.integers(1, 256, 21)
    decoded, ok = ecc.decode(byte_llr(received).reshape(-1))
    assert np.count_nonzero(ok) <= 1
    # a failed block returns the received systematic bytes
    first_failed = int(np.nonzero(~ok)[0][0])
    got = np.packbits(decoded.reshape(blocks, -1)[first_failed])
    np.testing.assert_array_equal(got, received[first_failed, 32:])


# --- LDPC -----------------------------------------------------------------------------------


@pytest.mark.parametrize(("n", "rate"), codes())
def test_ldpc_80211n_tables(n: int, rate: str):
    z = LIFTING[n]
    num, den = (int(part) for part in rate.split("/"))
    base = base_matrix(n, rate)
    rows = 24 * (den - num) // den
    assert base.shape == (rows, 24)
    assert base.min() >= -1 and base.max() < z
    parity = base[:, 24 - rows :]
    # dual-diagonal parity part: first column 1 / 0 (one middle row) / 1, then a 0-staircase
    first = parity[:, 0]
    assert first[0] == 1 and first[-1] == 1
    assert np.count_nonzero(first == 0) == 1 and np.count_nonzero(first >= 0) == 3
    staircase = np.full((rows, rows - 1), -1)
    staircase[np.arange(rows - 1), np.arange(rows - 1)] = 0
    staircase[np.arange(1, rows), np.arange(rows - 1)] = 0
    np.testing.assert_array_equal(parity[:, 1:], staircase)
    tables = build_code(n, rate)
    assert tables.code.n == n
    assert tables.code.rank == rows * z  # the lifted H has full rank n - k ...
    assert tables.code.k == n * num // den  # ... so k = n * rate


def test_ldpc_encoder_matches_commpy():
    rng = np.random.default_rng(9)
    ecc = build("ldpc", n=1296, rate="2/3")
    code = LDPCCode.from_base_graph(base_matrix(1296, "2/3"), 54)
    messages = rng.integers(0, 2, (3, ecc.k)).astype(np.uint8)
    coded = ecc.encode(messages.reshape(-1)).reshape(3, -1)
    np.testing.assert_array_equal(coded, np.array([code.encode(m) for m in messages]))
    assert not ((code.H.astype(np.int64) @ coded.T.astype(np.int64)) % 2).any()


@pytest.mark.parametrize("method", ["sum-product", "min-sum"])
def test_ldpc_awgn_waterfall(method: str):
    rng = np.random.default_rng(10)
    ecc = build("ldpc", n=1944, rate="1/2", iterations=20, method=method)
    blocks = 20 if method == "sum-product" else 6
    bits = rng.integers(0, 2, blocks * ecc.k).astype(np.uint8)
    coded = ecc.encode(bits)
    llr = awgn_llr(coded, 2.5, ecc.rate, rng)
    assert np.mean((llr < 0) != coded) > 0.05  # the channel really hurts
    decoded, ok = ecc.decode(llr)
    assert np.mean(decoded != bits) < 1e-4
    assert np.count_nonzero(ok) >= blocks - 1


def test_ldpc_pure_noise_is_detected():
    rng = np.random.default_rng(11)
    ecc = build("ldpc", n=648, rate="1/2", iterations=10)
    _, ok = ecc.decode(rng.standard_normal(4 * ecc.n) * 2.0)
    assert not ok.any()


# --- convolutional --------------------------------------------------------------------------


def test_conv_corrects_scattered_bit_errors():
    rng = np.random.default_rng(12)
    ecc = build("conv", block_bits=1024)
    bits = rng.integers(0, 2, 2 * ecc.k).astype(np.uint8)
    coded = ecc.encode(bits)
    received = coded.copy()
    received[np.arange(7, received.size, 40)] ^= 1  # one error every 40 coded bits
    decoded, ok = ecc.decode(strong_llr(received, 1.0))
    np.testing.assert_array_equal(decoded, bits)
    assert ok.all()


def test_conv_soft_awgn_at_4db():
    rng = np.random.default_rng(13)
    ecc = build("conv")
    bits = rng.integers(0, 2, 20 * ecc.k).astype(np.uint8)
    coded = ecc.encode(bits)
    llr = awgn_llr(coded, 4.0, 0.5, rng)
    assert np.mean((llr < 0) != coded) > 0.01
    decoded, _ = ecc.decode(llr)
    assert np.mean(decoded != bits) < 1e-4


# --- shortened codes ------------------------------------------------------------------------


@pytest.mark.parametrize("settings", [{"name": "rs", "k": 223},
                                      {"name": "ldpc", "n": 1944, "rate": "1/2"},
                                      {"name": "ldpc", "n": 648, "rate": "5/6"}])
def test_a_shortened_code_sends_the_full_codewords_less_the_padding(settings: dict[str, Any]):
    """Shortened encoding is the full code's encoding with the last block's padding positions
    (known zeros) left out, so both cost the same parity and only padding is saved."""
    rng = np.random.default_rng(5)
    full = ECCS.build(ECCS.config(settings))
    short = ECCS.build(ECCS.config({**settings, "shortened": True}))
    for n_bits in (8, full.k - 8, full.k, full.k + 8, 3 * full.k - 800):
        bits = rng.integers(0, 2, n_bits).astype(np.uint8)
        whole = full.encode(bits).reshape(-1, full.n)
        sent = short.encode(bits)
        pad = whole.shape[0] * full.k - n_bits
        assert sent.size == whole.size - pad == short.coded_bits(n_bits)
        head = (whole.shape[0] - 1) * full.n
        np.testing.assert_array_equal(sent[:head], whole[:-1].reshape(-1))
        np.testing.assert_array_equal(
            sent[head:], np.delete(whole[-1], short.info_positions[full.k - pad:]))
        assert not whole[-1, short.info_positions[full.k - pad:]].any()  # padding: zeros


@pytest.mark.parametrize("settings", [{"name": "rs", "k": 223, "shortened": True},
                                      {"name": "ldpc", "n": 648, "rate": "1/2",
                                       "shortened": True}])
def test_a_shortened_code_corrects_errors_in_its_short_last_block(settings: dict[str, Any]):
    """RS: t byte errors in a 20-byte shortened word (20 data + 32 parity bytes) are corrected;
    LDPC: a short last block at a BER the full code handles decodes clean."""
    rng = np.random.default_rng(6)
    ecc = ECCS.build(ECCS.config(settings))
    n_bits = ecc.k + 160
    bits = rng.integers(0, 2, n_bits).astype(np.uint8)
    coded = ecc.encode(bits)
    llr = strong_llr(coded)
    if settings["name"] == "rs":
        tail_bytes = (coded.size - ecc.n) // 8  # the short word, byte aligned
        for byte in rng.choice(tail_bytes, 16, replace=False):
            start = ecc.n + 8 * int(byte)
            llr[start: start + 8] *= -1
    else:
        flips = rng.random(coded.size) < 0.01
        llr = np.where(flips, -llr, llr) * 0.5
    decoded, ok = ecc.decode(llr)
    assert ok.all()
    np.testing.assert_array_equal(decoded[:n_bits], bits)
