"""The concatenated code: RS outer, byte interleaving of depth I, conv or LDPC inner code."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from noisylink.errors import ScenarioError
from noisylink.phy.ecc import ECCS, Concatenated
from noisylink.phy.ecc.convolutional.code import Convolutional
from noisylink.phy.ecc.reed_solomon.code import rs_encode_blocks

LDPC_FAST = {"name": "ldpc", "n": 1944, "rate": "1/2", "method": "min-sum",
             "schedule": "layered", "precision": "int16"}


def build(**settings: Any) -> Concatenated:
    code = ECCS.build(ECCS.config({"name": "concatenated", **settings}))
    assert isinstance(code, Concatenated)
    return code


def strong(coded: np.ndarray) -> np.ndarray:
    return 6.0 * (1.0 - 2.0 * coded.astype(np.float64))


def with_inner_output(code: Concatenated, corrupt) -> None:
    """Make ``code``'s inner decoder hand on its output bits, ``[blocks, frame bits]``,
    after ``corrupt`` (a burst after the inner code, as a Viterbi error event would give)."""
    decode = code.inner.decode

    def corrupted(llr):
        bits, ok = decode(llr)
        rows = bits.reshape(ok.size // code.inner_blocks, -1).copy()
        corrupt(rows)
        return rows.reshape(-1), ok

    code.inner.decode = corrupted  # type: ignore[method-assign]


def flip_bytes(rows: np.ndarray, block: int, first: int, count: int, seed: int) -> None:
    """XOR ``count`` frame bytes from ``first`` on with nonzero bytes: each one is wrong."""
    masks = np.random.default_rng(seed).integers(1, 256, count, dtype=np.uint8)
    rows[block, 8 * first : 8 * (first + count)] ^= np.unpackbits(masks)


@pytest.mark.parametrize(
    "settings",
    [
        {},
        {"depth": 1},
        {"depth": 3, "inner": {"name": "conv", "rate": "3/4"}},
        {"depth": 8, "outer": {"name": "rs", "k": 239}, "inner": {"name": "conv", "rate": "7/8"}},
        {"depth": 2, "inner": LDPC_FAST},
        {"depth": 1, "inner": {"name": "ldpc", "n": 648, "rate": "5/6"}},
    ],
)
def test_clean_channel_is_exact(settings: dict[str, Any]):
    code = build(**settings)
    rng = np.random.default_rng(1)
    bits = rng.integers(0, 2, 2 * code.k + 77, dtype=np.uint8)
    coded = code.encode(bits)
    assert coded.dtype == np.uint8 and coded.shape == (3 * code.n,)
    decoded, ok = code.decode(strong(coded))
    np.testing.assert_array_equal(decoded[: bits.size], bits)
    assert not decoded[bits.size :].any() and ok.tolist() == [True] * 3


def test_sizes_and_rate():
    ccsds = build()
    assert (ccsds.k, ccsds.n) == (5 * 223 * 8, 2 * (5 * 255 * 8 + 6))
    assert ccsds.rate == pytest.approx(8920 / 20412)
    assert isinstance(ccsds.inner, Convolutional) and ccsds.inner.k == 10200
    punctured = build(depth=2, inner={"name": "conv", "rate": "3/4"})
    assert punctured.n == punctured.inner.n and punctured.k == 2 * 223 * 8
    ldpc = build(depth=5, inner=LDPC_FAST)  # 10200 bits in 972-bit words: 11 words
    assert (ldpc.inner_blocks, ldpc.n) == (11, 11 * 1944)


def test_frame_byte_j_comes_from_codeword_j_mod_depth():
    code = build(depth=3)
    rng = np.random.default_rng(2)
    bits = rng.integers(0, 2, code.k, dtype=np.uint8)
    messages = np.packbits(bits).reshape(3, 223).astype(np.int64)
    codewords = rs_encode_blocks(223, messages)  # [3, 255]
    frame_bits, _ = code.inner.decode(strong(code.encode(bits)))
    frame = np.packbits(frame_bits)
    j = np.arange(3 * 255)
    np.testing.assert_array_equal(frame, codewords[j % 3, j // 3])


@pytest.mark.parametrize("depth", [1, 2, 5, 8])
def test_bursts_of_up_to_16_depth_bytes_are_corrected(depth: int):
    code = build(depth=depth)
    rng = np.random.default_rng(depth)
    bits = rng.integers(0, 2, 4 * code.k, dtype=np.uint8)
    coded = code.encode(bits)
    burst = 16 * depth

    def corrupt(rows: np.ndarray) -> None:
        for block, first in enumerate([0, 1, 255 * depth - burst, 100 * depth + 3]):
            flip_bytes(rows, block, first, burst, seed=block)

    with_inner_output(code, corrupt)
    decoded, ok = code.decode(strong(coded))
    assert ok.all()
    np.testing.assert_array_equal(decoded, bits)


@pytest.mark.parametrize("depth", [1, 5])
def test_a_longer_burst_is_reported_not_ok(depth: int):
    code = build(depth=depth)
    bits = np.random.default_rng(3).integers(0, 2, 2 * code.k, dtype=np.uint8)
    coded = code.encode(bits)

    def corrupt(rows: np.ndarray) -> None:  # 17 wrong bytes in each codeword of block 1
        flip_bytes(rows, 1, 40, 17 * depth, seed=4)

    with_inner_output(code, corrupt)
    decoded, ok = code.decode(strong(coded))
    assert ok.tolist() == [True, False]
    np.testing.assert_array_equal(decoded[: code.k], bits[: code.k])


def test_a_viterbi_error_burst_is_corrected():
    """Coded bits received wrong over 400 trellis steps: the Viterbi decoder emits a burst of
    errors there (about 400 bits, 50 bytes), which RS with depth 5 (80 bytes) corrects."""
    code = build(depth=5)
    bits = np.random.default_rng(5).integers(0, 2, code.k, dtype=np.uint8)
    llr = strong(code.encode(bits))
    llr[3000:3800] *= -1.0
    inner_bits, _ = code.inner.decode(llr)
    assert np.count_nonzero(inner_bits != code.inner.decode(strong(code.encode(bits)))[0]) > 50
    decoded, ok = code.decode(llr)
    assert ok.all()
    np.testing.assert_array_equal(decoded, bits)


def test_failed_ldpc_words_become_erasures_where_that_helps():
    """One LDPC word of pure noise fails (``ok`` False) and leaves ~61 wrong bytes among the 122
    it carries: ~12 per RS codeword at depth 5 but up to 24 in some, more than t = 16. Marked as
    erasures (up to 25 per codeword, 32 allowed) they are all corrected."""
    code = build(depth=5, inner=LDPC_FAST)
    rng = np.random.default_rng(6)
    bits = rng.integers(0, 2, 3 * code.k, dtype=np.uint8)
    llr = strong(code.encode(bits))
    word = code.inner.n
    for block, inner in [(0, 0), (1, 4), (2, 10)]:
        start = (block * code.inner_blocks + inner) * word
        llr[start : start + word] = rng.standard_normal(word)  # pure noise
    assert code.inner.decode(llr)[1].sum() == 3 * code.inner_blocks - 3
    decoded, ok = code.decode(llr)
    assert ok.all()
    np.testing.assert_array_equal(decoded, bits)


def test_channel_errors_never_raise():
    for code in (build(depth=2), build(depth=2, inner=LDPC_FAST)):
        size = 2 * code.n
        rng = np.random.default_rng(7)
        for llr in (
            np.full(size, np.nan),
            np.zeros(size),
            np.where(rng.random(size) < 0.5, np.inf, -np.inf),
            rng.standard_normal(size).astype(np.float32) * 1e30,
        ):
            decoded, ok = code.decode(llr)
            assert decoded.shape == (2 * code.k,) and ok.shape == (2,)
            assert set(np.unique(decoded)) <= {0, 1}


@pytest.mark.parametrize(
    ("settings", "field"),
    [
        ({"depth": 0}, "ecc.depth"),
        ({"depth": 9}, "ecc.depth"),
        ({"outer": {"name": "ldpc"}}, "ecc.outer.name"),
        ({"outer": {"name": "rs", "k": 300}}, "ecc.outer.k"),
        ({"inner": {"name": "rs"}}, "ecc.inner"),
        ({"inner": {"name": "conv", "rate": "4/5"}}, "ecc.inner.conv.rate"),
        ({"inner": {"name": "conv", "block_bits": 2048}}, "inner.block_bits"),
        ({"interleave": 5}, "ecc.interleave"),
    ],
)
def test_bad_settings_are_one_line_naming_the_field(settings: dict[str, Any], field: str):
    with pytest.raises(ScenarioError) as error:
        ECCS.config({"name": "concatenated", **settings})
    message = str(error.value)
    assert field in message and "\n" not in message


def test_labels_and_params():
    config = ECCS.config({"name": "concatenated"})
    assert config.label() == "concatenated(rs(k=223),I=5,conv)"
    assert config.params() == {"outer": {"k": 223}, "depth": 5, "inner": {"name": "conv"}}
    config = ECCS.config({"name": "concatenated", "depth": 2,
                          "inner": {"name": "conv", "rate": "3/4", "block_bits": 4080}})
    assert config.label() == "concatenated(rs(k=223),I=2,conv(rate=3/4))"


def test_layout_counts_what_the_code_sends():
    """``LinkChain.layout``'s bit counts follow from the code's ``k`` and ``n``."""
    from noisylink.link.chain import LinkChain
    from noisylink.scenarios import expand, parse_scenario

    data = parse_scenario(
        {
            "name": "concatenated",
            "images": {"source": "samples", "resize": 64, "size": 64, "limit": 1},
            "codec": {"name": "jpeg", "quality": 75},
            "frames": {"payload_bytes": 2000, "header": "ideal"},
            "ecc": {"name": "concatenated", "depth": 2,
                    "inner": {"name": "conv", "rate": "3/4"}},
            "modulation": {"name": "bpsk"},
            "channel": {"name": "awgn", "ebn0_db": 3.0},
        },
        "test",
    )
    cell = expand(data)[0]
    chain = LinkChain(cell, data.frames)
    code = ECCS.build(cell.ecc)
    assert isinstance(code, Concatenated)
    layout = chain.layout(2000)
    blocks = -(-layout.wire_bits // code.k)
    assert layout.coded_bits == blocks * code.n
    assert layout.parity_bits == blocks * (code.n - code.k)
    assert code.rate == pytest.approx(code.k / code.n)
