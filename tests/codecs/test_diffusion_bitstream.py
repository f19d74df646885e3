"""Bit layouts of DDCM, Turbo-DDCM and Robust Turbo-DDCM: widths, round trips, and a decoder
that survives any bits (flips, truncation, garbage, K not a power of two)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from noisylink.codecs.diffusion.bitstream import (
    Method,
    bits_per_step,
    index_bits,
    pack,
    stream_bits,
    unpack,
    unpack_many,
)
from noisylink.codecs.diffusion.combinatorics import rank_bits

METHODS: tuple[Method, ...] = ("ddcm", "turbo", "robust")
FUZZ = settings(
    max_examples=200,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


def random_choice(
    method: Method, K: int, M: int, T: int, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """Indices [T, M] (distinct per step, in random order) and signs [T, M] for ``method``."""
    indices = np.stack([rng.choice(K, size=M, replace=False) for _ in range(T)]).astype(np.int64)
    signs = rng.choice(np.array([-1, 1], dtype=np.int8), size=(T, M))
    if method == "ddcm":
        signs = np.ones((T, M), dtype=np.int8)
    return indices.reshape(T, M), signs


def flip_bit(payload: bytes, position: int) -> bytes:
    """``payload`` with bit ``position`` (0 = most significant bit of byte 0) inverted."""
    data = bytearray(payload)
    data[position // 8] ^= 0x80 >> (position % 8)
    return bytes(data)


def assert_valid(indices: np.ndarray, signs: np.ndarray, K: int, M: int, T: int) -> None:
    """Decoded arrays have the side info's shape, indices in [0, K), signs in {-1, +1}."""
    assert indices.shape == (T, M)
    assert signs.shape == (T, M)
    assert indices.dtype == np.int64
    assert signs.dtype == np.int8
    assert np.all((indices >= 0) & (indices < K))
    assert np.all((signs == 1) | (signs == -1))


# ----- widths -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("K", "expected"), [(2, 1), (3, 2), (4, 2), (5, 3), (1000, 10), (4096, 12)]
)
def test_index_bits(K: int, expected: int) -> None:
    assert index_bits(K) == expected


@pytest.mark.parametrize(("K", "M", "T"), [(4096, 10, 20), (4096, 1, 7), (1000, 5, 3), (64, 30, 4)])
def test_widths_match_formulas(K: int, M: int, T: int) -> None:
    log2_k = math.ceil(math.log2(K))
    log2_comb = (math.comb(K, M) - 1).bit_length()
    assert bits_per_step("turbo", K, M) == log2_comb + M
    assert bits_per_step("robust", K, M) == M * (log2_k + 1)
    assert rank_bits(K, M) == log2_comb
    expected = {"turbo": log2_comb + M, "robust": M * (log2_k + 1), "ddcm": log2_k}
    rng = np.random.default_rng(K + M + T)
    for method in METHODS:
        m = 1 if method == "ddcm" else M
        assert stream_bits(method, K, m, T) == T * expected[method]
        indices, signs = random_choice(method, K, m, T, rng)
        payload = pack(method, K, indices, signs)
        assert len(payload) == math.ceil(stream_bits(method, K, m, T) / 8)


def test_known_widths() -> None:
    assert bits_per_step("ddcm", 4096, 1) == 12
    assert bits_per_step("turbo", 8, 3) == 6 + 3
    assert bits_per_step("robust", 8, 3) == 12
    assert bits_per_step("turbo", 4096, 10) == (math.comb(4096, 10) - 1).bit_length() + 10
    assert bits_per_step("robust", 4096, 10) == 130
    assert stream_bits("robust", 4096, 10, 0) == 0


@pytest.mark.parametrize(
    ("method", "K", "M"), [("ddcm", 8, 2), ("turbo", 8, 9), ("robust", 8, 0), ("x", 8, 1)]
)
def test_invalid_sizes_raise(method: Method, K: int, M: int) -> None:
    with pytest.raises(ValueError):
        bits_per_step(method, K, M)


# ----- layout --------------------------------------------------------------------------------


def test_turbo_worked_example_layout_and_flips() -> None:
    payload = pack("turbo", 8, np.array([[2, 0, 1]]), np.array([[1, 1, 1]], dtype=np.int8))
    # 6 rank bits of 0, then three positive sign bits, then zero padding at the end.
    assert payload == bytes([0b00000011, 0b10000000])
    expected = {
        0: (1, 4, 7),  # the most significant rank bit: rank 32
        1: (0, 4, 6),
        2: (0, 2, 5),
        3: (0, 1, 6),
        4: (0, 1, 4),
        5: (0, 1, 3),
    }
    for position, combo in expected.items():
        indices, signs = unpack("turbo", 8, 3, 1, flip_bit(payload, position))
        assert tuple(indices[0]) == combo
        assert signs.tolist() == [[1, 1, 1]]


def test_turbo_signs_follow_sorted_indices() -> None:
    indices = np.array([[7, 0, 3]])
    signs = np.array([[1, -1, 1]], dtype=np.int8)
    payload = pack("turbo", 8, indices, signs)
    # Sorted set (0, 3, 7) then signs (-1, +1, +1) as bits 0, 1, 1.
    bits = np.unpackbits(np.frombuffer(payload, dtype=np.uint8))
    assert bits[6:9].tolist() == [0, 1, 1]
    decoded, decoded_signs = unpack("turbo", 8, 3, 1, payload)
    assert decoded.tolist() == [[0, 3, 7]]
    assert decoded_signs.tolist() == [[-1, 1, 1]]


def test_robust_layout() -> None:
    payload = pack("robust", 8, np.array([[5, 2]]), np.array([[1, -1]], dtype=np.int8))
    # 101 1 | 010 0 -> 10110100
    assert payload == bytes([0b10110100])


def test_ddcm_layout() -> None:
    payload = pack("ddcm", 8, np.array([[5], [2], [7]]))
    # 101 010 111 + 7 zero bits of padding
    assert payload == bytes([0b10101011, 0b10000000])


def test_pack_rejects_bad_input() -> None:
    with pytest.raises(ValueError):
        pack("turbo", 8, np.array([[1, 1, 2]]), np.ones((1, 3), dtype=np.int8))
    with pytest.raises(ValueError):
        pack("robust", 8, np.array([[1, 8]]), np.ones((1, 2), dtype=np.int8))
    with pytest.raises(ValueError):
        pack("robust", 8, np.array([[1, 2]]), np.array([[1, 0]], dtype=np.int8))
    with pytest.raises(ValueError):
        pack("ddcm", 8, np.array([[1, 2]]), None)


# ----- round trips ---------------------------------------------------------------------------


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize(("K", "M", "T"), [(8, 3, 5), (4096, 10, 6), (1000, 7, 4), (37, 37, 2)])
def test_round_trip(method: Method, K: int, M: int, T: int) -> None:
    m = 1 if method == "ddcm" else M
    rng = np.random.default_rng(K * 31 + M)
    indices, signs = random_choice(method, K, m, T, rng)
    decoded, decoded_signs = unpack(method, K, m, T, pack(method, K, indices, signs))
    if method == "turbo":
        order = np.argsort(indices, axis=1)
        indices = np.take_along_axis(indices, order, axis=1)
        signs = np.take_along_axis(signs, order, axis=1)
    np.testing.assert_array_equal(decoded, indices)
    np.testing.assert_array_equal(decoded_signs, signs)
    assert decoded.dtype == np.int64
    assert decoded_signs.dtype == np.int8


@FUZZ
@given(
    method=st.sampled_from(METHODS),
    K=st.integers(2, 5000),
    M=st.integers(1, 12),
    T=st.integers(1, 6),
    seed=st.integers(0, 2**32 - 1),
)
def test_round_trip_property(method: Method, K: int, M: int, T: int, seed: int) -> None:
    m = 1 if method == "ddcm" else min(M, K)
    indices, signs = random_choice(method, K, m, T, np.random.default_rng(seed))
    decoded, decoded_signs = unpack(method, K, m, T, pack(method, K, indices, signs))
    if method == "turbo":
        order = np.argsort(indices, axis=1)
        indices = np.take_along_axis(indices, order, axis=1)
        signs = np.take_along_axis(signs, order, axis=1)
    np.testing.assert_array_equal(decoded, indices)
    np.testing.assert_array_equal(decoded_signs, signs)


def test_unpack_many_stacks() -> None:
    rng = np.random.default_rng(0)
    streams = [random_choice("robust", 1000, 4, 3, rng) for _ in range(5)]
    payloads = [pack("robust", 1000, i, s) for i, s in streams]
    indices, signs = unpack_many("robust", 1000, 4, 3, payloads)
    assert indices.shape == (5, 3, 4)
    assert signs.shape == (5, 3, 4)
    for b, (i, s) in enumerate(streams):
        np.testing.assert_array_equal(indices[b], i)
        np.testing.assert_array_equal(signs[b], s)
    empty_indices, empty_signs = unpack_many("turbo", 1000, 4, 3, [])
    assert empty_indices.shape == (0, 3, 4)
    assert empty_signs.shape == (0, 3, 4)


# ----- robustness ----------------------------------------------------------------------------


@FUZZ
@given(
    K=st.sampled_from([2, 3, 5, 8, 100, 1000, 4096]),
    M=st.integers(1, 8),
    T=st.integers(1, 5),
    seed=st.integers(0, 2**32 - 1),
    data=st.data(),
)
def test_robust_single_flip_changes_one_field(K: int, M: int, T: int, seed: int, data) -> None:
    M = min(M, K)
    indices, signs = random_choice("robust", K, M, T, np.random.default_rng(seed))
    payload = pack("robust", K, indices, signs)
    position = data.draw(st.integers(0, stream_bits("robust", K, M, T) - 1))
    decoded, decoded_signs = unpack("robust", K, M, T, flip_bit(payload, position))
    changed_indices = np.argwhere(decoded != indices)
    changed_signs = np.argwhere(decoded_signs != signs)
    assert len(changed_indices) + len(changed_signs) == 1
    width = index_bits(K) + 1
    step, atom = divmod(position // width, M)
    field = position % width
    if field == width - 1:
        assert changed_signs.tolist() == [[step, atom]]
    else:
        assert changed_indices.tolist() == [[step, atom]]


@pytest.mark.parametrize("method", METHODS)
def test_flips_in_padding_change_nothing(method: Method) -> None:
    K, M, T = 1000, 3, 3
    m = 1 if method == "ddcm" else M
    indices, signs = random_choice(method, K, m, T, np.random.default_rng(1))
    payload = pack(method, K, indices, signs)
    reference = unpack(method, K, m, T, payload)
    n_bits = stream_bits(method, K, m, T)
    assert n_bits % 8 != 0
    for position in range(n_bits, 8 * len(payload)):
        decoded, decoded_signs = unpack(method, K, m, T, flip_bit(payload, position))
        np.testing.assert_array_equal(decoded, reference[0])
        np.testing.assert_array_equal(decoded_signs, reference[1])


@FUZZ
@given(
    method=st.sampled_from(METHODS),
    K=st.sampled_from([2, 3, 5, 8, 37, 100, 1000, 4096, 5000]),
    M=st.integers(1, 10),
    T=st.integers(1, 6),
    payload=st.binary(max_size=200),
)
def test_any_payload_decodes(method: Method, K: int, M: int, T: int, payload: bytes) -> None:
    m = 1 if method == "ddcm" else min(M, K)
    indices, signs = unpack(method, K, m, T, payload)
    assert_valid(indices, signs, K, m, T)
    if method == "ddcm":
        assert np.all(signs == 1)
    if method == "turbo":
        assert np.all(np.diff(indices, axis=1) > 0)


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("K", [5, 1000, 4096])
def test_extreme_payloads_decode(method: Method, K: int) -> None:
    M = 1 if method == "ddcm" else 4
    T = 3
    n_bytes = math.ceil(stream_bits(method, K, M, T) / 8)
    indices, signs = random_choice(method, K, M, T, np.random.default_rng(K))
    full = pack(method, K, indices, signs)
    payloads = [
        b"",
        bytes(n_bytes),
        b"\xff" * n_bytes,
        b"\xff" * (3 * n_bytes),
        full[: n_bytes // 2],
        full + b"\xab\xcd",
    ]
    for payload in payloads:
        assert_valid(*unpack(method, K, M, T, payload), K, M, T)
    batch_indices, batch_signs = unpack_many(method, K, M, T, payloads)
    assert batch_indices.shape == (len(payloads), T, M)
    assert batch_signs.shape == (len(payloads), T, M)
    # Extra bytes are ignored; a truncated stream keeps its prefix and reads the rest as zeros.
    np.testing.assert_array_equal(batch_indices[5], unpack(method, K, M, T, full)[0])
    zeros = unpack(method, K, M, T, b"")
    np.testing.assert_array_equal(zeros[0], unpack(method, K, M, T, bytes(n_bytes))[0])


def test_out_of_range_values_reduce_modulo() -> None:
    # Robust, K = 5: index field 111 (7) reads as 7 mod 5 = 2; both atoms may coincide.
    indices, signs = unpack("robust", 5, 2, 1, bytes([0b11111110]))
    assert indices.tolist() == [[2, 2]]
    assert signs.tolist() == [[1, -1]]
    # Turbo, K = 8, M = 3: rank bits 111111 = 63 reduce to 63 - 56 = 7.
    indices, _ = unpack("turbo", 8, 3, 1, bytes([0b11111100, 0]))
    assert indices.tolist() == [[0, 2, 4]]  # itertools.combinations(range(8), 3) item 7
    # DDCM, K = 5: 111 reads as 2.
    indices, signs = unpack("ddcm", 5, 1, 2, bytes([0b11100000]))
    assert indices.tolist() == [[2], [0]]
    assert signs.tolist() == [[1], [1]]
