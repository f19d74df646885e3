"""Every registered codec's decoder survives any bits: bit flips, truncation, zeroed runs,
garbage. It returns a uint8 image of the side info's shape or raises DecodeError (never, for a
codec that declares ``always_decodable``); nothing else escapes, nothing hangs, and the same
bits always give the same answer (image or message).

Nothing here depends on how fast the machine is: no hypothesis deadlines; a decode that runs
for minutes counts as a hang (``HANG_S``). Decoder speed is measured in ``benchmarks/``.

The codecs are looked up in ``CODECS`` at collection time, so codecs added later are covered.
Each is built with its default config and encodes one small image for a real payload.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from functools import cache
from typing import Any

import numpy as np
import pytest
from diffusion_models import tiny_pixel_prior
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from learned_models import tiny_hyperprior

from noisylink.codecs import CODECS, Encoded, codec_class
from noisylink.codecs.base import SideInfo
from noisylink.errors import DecodeError

FUZZ = settings(
    max_examples=200,
    deadline=None,  # no wall-clock limit per example: a busy machine is not a failure
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

# A single decode running this long is a hang, whatever else the machine is doing.
HANG_S = 300.0


def sample_image(height: int = 48, width: int = 40) -> np.ndarray:
    """A small RGB picture with edges and gradients, so every coding tool gets used."""
    y, x = np.mgrid[0:height, 0:width]
    image = np.stack([x * 6, y * 5, (x * y) % 256], axis=-1).astype(np.uint8)
    image[10:30, 8:24] = (200, 50, 90)
    return image


# Diffusion codecs decode with a model: here a tiny random one and a short schedule, so that
# thousands of fuzzed decodes stay fast. What is fuzzed (bit layout, wrapping rules) is the same.
SMALL_SETTINGS: dict[str, dict[str, Any]] = {
    "ddcm": {"K": 100, "T": 3},
    "turbo-ddcm": {"K": 100, "M": 5, "T": 2},
    "robust-turbo-ddcm": {"K": 100, "M": 5, "T": 2},
    "diffc": {"steps": 4, "stop": 3, "chunk_bits": 6},
}


# Codecs for one image shape get a picture of that shape.
def gray_digit() -> np.ndarray:
    image = np.zeros((28, 28, 1), dtype=np.uint8)
    image[5:23, 11:17] = 255
    return image


SAMPLE_IMAGES = {"necst": gray_digit, "iabf": gray_digit}


# The quick loop (``pytest -m "not slow"``) fuzzes two fast codecs; ``pytest`` fuzzes them all.
QUICK = ("jpeg", "webp")
SLOW = pytest.mark.slow


def fuzzed(names: list[str]) -> list[Any]:
    return [name if name in QUICK else pytest.param(name, marks=SLOW) for name in names]


@cache
def sample(name: str) -> tuple[Any, Encoded]:
    """The codec built from its default config (small for diffusion codecs), and its encoding
    of the sample image."""
    settings_ = dict(SMALL_SETTINGS.get(name, {}))
    if settings_:
        settings_["model"] = str(tiny_pixel_prior())
    if name == "hyperprior":  # a tiny untrained model: the bitstream is what is fuzzed
        settings_["model"] = str(tiny_hyperprior())
    codec = CODECS.build(CODECS.config({"name": name, **settings_}))
    return codec, codec.encode(SAMPLE_IMAGES.get(name, sample_image)())


def without_hanging(decode: Callable[[], np.ndarray]) -> np.ndarray:
    """``decode()``, run in a daemon thread so that a decoder stuck (even in C) fails the test
    after ``HANG_S`` instead of stalling the suite; its exception, if any, is raised here."""
    outcome: list[np.ndarray | BaseException] = []

    def run() -> None:
        try:
            outcome.append(decode())
        except BaseException as exc:  # handed to the test's thread
            outcome.append(exc)

    thread = threading.Thread(target=run, name="fuzzed-decode", daemon=True)
    thread.start()
    thread.join(HANG_S)
    if thread.is_alive():
        pytest.fail(f"decoding did not finish in {HANG_S:.0f} s: a hang")
    (result,) = outcome
    if isinstance(result, BaseException):
        raise result
    return result


def decode_checked(name: str, payload: bytes) -> np.ndarray | None:
    """Decode twice; check the contract and that both answers (image or error message,
    which results record) are the same. None means DecodeError."""
    codec, encoded = sample(name)
    side_info: SideInfo = encoded.side_info
    shape = side_info.shape
    results: list[np.ndarray | str] = []
    for _ in range(2):
        try:
            image = without_hanging(lambda: codec.decode(payload, 8 * len(payload), side_info))
        except DecodeError as error:
            assert not codec.always_decodable, f"an always-decodable codec refused: {error}"
            results.append(str(error))
            continue
        assert isinstance(image, np.ndarray)
        assert image.dtype == np.uint8
        assert image.shape == shape
        results.append(image)
    first, second = results
    if isinstance(first, str) or isinstance(second, str):
        same = isinstance(first, str) and isinstance(second, str) and first == second
        assert same, "decoding the same bits twice disagreed"
        return None
    assert np.array_equal(first, second), "decoding the same bits twice disagreed"
    return first


CODEC_NAMES = CODECS.names()


@pytest.mark.parametrize("name", [pytest.param(name, marks=SLOW) if name == "ddcm" else name
                                  for name in CODEC_NAMES])
def test_clean_payload_decodes(name: str) -> None:
    _, encoded = sample(name)
    assert decode_checked(name, encoded.payload) is not None


@pytest.mark.parametrize(
    "name", [name for name in CODEC_NAMES if codec_class(name).always_decodable]
)
def test_always_decodable_codecs_show_a_picture_for_zeros_and_for_nothing(name: str) -> None:
    _, encoded = sample(name)
    assert decode_checked(name, bytes(len(encoded.payload))) is not None
    assert decode_checked(name, b"") is not None


@pytest.mark.parametrize("name", fuzzed(CODEC_NAMES))
@FUZZ
@given(rate=st.floats(1e-5, 0.5), seed=st.integers(0, 2**32 - 1))
def test_bit_flips(name: str, rate: float, seed: int) -> None:
    _, encoded = sample(name)
    bits = np.unpackbits(np.frombuffer(encoded.payload, dtype=np.uint8))
    flips = np.random.default_rng(seed).random(bits.size) < rate
    decode_checked(name, np.packbits(bits ^ flips).tobytes())


@pytest.mark.parametrize("name", fuzzed(CODEC_NAMES))
@FUZZ
@given(data=st.data())
def test_header_bit_flips(name: str, data: st.DataObject) -> None:
    """A few flips among the first bytes, where headers (sizes, counts, offsets) live."""
    _, encoded = sample(name)
    payload = bytearray(encoded.payload)
    span = min(len(payload), 256)
    positions = data.draw(st.lists(st.integers(0, 8 * span - 1), min_size=1, max_size=4))
    for position in positions:
        payload[position // 8] ^= 1 << (position % 8)
    decode_checked(name, bytes(payload))


@pytest.mark.parametrize("name", fuzzed(CODEC_NAMES))
@FUZZ
@given(data=st.data())
def test_truncation(name: str, data: st.DataObject) -> None:
    _, encoded = sample(name)
    length = data.draw(st.integers(0, len(encoded.payload)))
    decode_checked(name, encoded.payload[:length])


@pytest.mark.parametrize("name", fuzzed(CODEC_NAMES))
@FUZZ
@given(data=st.data())
def test_zeroed_runs(name: str, data: st.DataObject) -> None:
    _, encoded = sample(name)
    payload = bytearray(encoded.payload)
    runs = data.draw(
        st.lists(
            st.tuples(st.integers(0, len(payload) - 1), st.integers(1, 256)),
            min_size=1,
            max_size=3,
        )
    )
    for start, length in runs:
        payload[start : start + length] = bytes(len(payload[start : start + length]))
    decode_checked(name, bytes(payload))


@pytest.mark.parametrize("name", fuzzed(CODEC_NAMES))
@FUZZ
@given(garbage=st.binary(min_size=0, max_size=4096))
def test_garbage(name: str, garbage: bytes) -> None:
    decode_checked(name, garbage)


@pytest.mark.parametrize("name", fuzzed(CODEC_NAMES))
@FUZZ
@given(data=st.data())
def test_valid_header_then_garbage(name: str, data: st.DataObject) -> None:
    """The file's own start followed by random bytes: decoders get past the header checks."""
    _, encoded = sample(name)
    keep = data.draw(st.integers(0, len(encoded.payload)))
    tail = data.draw(st.binary(min_size=0, max_size=2 * len(encoded.payload)))
    decode_checked(name, encoded.payload[:keep] + tail)
