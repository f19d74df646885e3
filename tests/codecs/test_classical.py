"""The Pillow/pillow-heif codecs: round trips, determinism, bpp targeting, config checks."""

from __future__ import annotations

import io
from dataclasses import replace

import numpy as np
import pytest
from PIL import Image, ImageFile

from noisylink.codecs import CODECS
from noisylink.codecs.classical import PictureSideInfo, _webp_size
from noisylink.errors import DecodeError, LinkError, ScenarioError
from noisylink.metrics import psnr

CLASSICAL = ["avif", "heif", "jpeg", "jpeg2000", "webp"]
SHAPES = [(64, 64, 3), (96, 80, 3), (64, 64, 1), (96, 80, 1)]


def synthetic(height: int, width: int, channels: int) -> np.ndarray:
    """A smooth gradient with a few flat shapes and one soft texture: codec-friendly, not flat."""
    y, x = np.mgrid[0:height, 0:width].astype(np.float64)
    red = 255 * x / max(1, width - 1)
    green = 255 * y / max(1, height - 1)
    blue = 128 + 60 * np.sin(x / 5.0) * np.cos(y / 7.0)
    image = np.stack([red, green, blue], axis=-1)
    image[height // 4 : height // 2, width // 4 : width // 2] = (220, 40, 60)
    disc = (y - 0.65 * height) ** 2 + (x - 0.7 * width) ** 2 < (min(height, width) / 6) ** 2
    image[disc] = (30, 200, 90)
    image = np.clip(np.rint(image), 0, 255).astype(np.uint8)
    if channels == 1:
        gray = np.rint(image @ np.array([0.299, 0.587, 0.114]))
        return gray.astype(np.uint8)[:, :, None]
    return image


def build(name: str, **settings: object):
    return CODECS.build(CODECS.config({"name": name, **settings}))


def test_all_classical_codecs_registered() -> None:
    assert set(CLASSICAL) <= set(CODECS.names())


@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: "x".join(map(str, s)))
@pytest.mark.parametrize("name", CLASSICAL)
def test_round_trip(name: str, shape: tuple[int, int, int]) -> None:
    image = synthetic(*shape)
    codec = build(name)
    encoded = codec.encode(image)
    assert isinstance(encoded.payload, bytes)
    assert encoded.n_bits == 8 * len(encoded.payload)
    assert encoded.side_info == PictureSideInfo(height=shape[0], width=shape[1], channels=shape[2])
    decoded = codec.decode(encoded.payload, encoded.n_bits, encoded.side_info)
    assert decoded.shape == shape
    assert decoded.dtype == np.uint8
    assert psnr(image, decoded) > 28.0


@pytest.mark.parametrize("name", CLASSICAL)
def test_two_dimensional_gray_input_is_accepted(name: str) -> None:
    image = synthetic(64, 64, 1)
    codec = build(name)
    encoded = codec.encode(image[:, :, 0])
    assert codec.decode(encoded.payload, encoded.n_bits, encoded.side_info).shape == (64, 64, 1)


@pytest.mark.parametrize("settings", [{}, {"bpp": 1.0}], ids=["quality", "bpp"])
@pytest.mark.parametrize("name", CLASSICAL)
def test_deterministic(name: str, settings: dict[str, float]) -> None:
    image = synthetic(96, 80, 3)
    first = build(name, **settings).encode(image)
    second = build(name, **settings).encode(image.copy())
    assert first.payload == second.payload
    codec = build(name, **settings)
    one = codec.decode(first.payload, first.n_bits, first.side_info)
    two = codec.decode(first.payload, first.n_bits, first.side_info)
    assert np.array_equal(one, two)


@pytest.mark.parametrize("bpp", [0.5, 1.0, 1.5])
@pytest.mark.parametrize("name", CLASSICAL)
def test_bpp_target_met_and_close(name: str, bpp: float) -> None:
    image = synthetic(128, 128, 3)
    encoded = build(name, bpp=bpp).encode(image)
    achieved = encoded.n_bits / (128 * 128)
    assert achieved <= bpp
    assert achieved >= 0.75 * bpp


@pytest.mark.parametrize("name", CLASSICAL)
def test_more_bits_give_better_pictures(name: str) -> None:
    image = synthetic(128, 128, 3)
    scores = []
    for bpp in (0.75, 3.0):
        codec = build(name, bpp=bpp)
        encoded = codec.encode(image)
        scores.append(psnr(image, codec.decode(encoded.payload, encoded.n_bits, encoded.side_info)))
    assert scores[1] > scores[0]


@pytest.mark.parametrize("name", CLASSICAL)
def test_unreachable_bpp_is_a_clear_error(name: str) -> None:
    with pytest.raises(LinkError, match=r"cannot meet bpp=0\.001"):
        build(name, bpp=0.001).encode(synthetic(64, 64, 3))


@pytest.mark.parametrize("channels", [3, 1])
def test_jpeg_decode_equals_pillow(channels: int) -> None:
    image = synthetic(96, 80, channels)
    codec = build("jpeg", quality=60)
    encoded = codec.encode(image)
    reference = np.asarray(Image.open(io.BytesIO(encoded.payload)))
    reference = reference.reshape(96, 80, channels)
    assert np.array_equal(
        codec.decode(encoded.payload, encoded.n_bits, encoded.side_info), reference
    )


def test_truncated_jpeg_decodes_partially() -> None:
    image = synthetic(96, 80, 3)
    codec = build("jpeg")
    encoded = codec.encode(image)
    cut = encoded.payload[: len(encoded.payload) * 2 // 3]
    decoded = codec.decode(cut, 8 * len(cut), encoded.side_info)
    # The first rows survive; what the decoder never reached is mid-gray.
    assert psnr(image[:16], decoded[:16]) > 28.0
    assert np.all(decoded[-8:] == 128)
    assert ImageFile.LOAD_TRUNCATED_IMAGES is False  # our decode left the global as it was


def test_partial_decode_showing_nothing_is_a_decode_error() -> None:
    codec = build("jpeg2000")
    encoded = codec.encode(synthetic(96, 80, 3))
    cut = encoded.payload[:-40]  # OpenJPEG (via Pillow) decodes nothing of a truncated tile
    with pytest.raises(DecodeError, match="nothing decoded"):
        codec.decode(cut, 8 * len(cut), encoded.side_info)


def test_n_bits_limits_the_payload_read() -> None:
    codec = build("jpeg")
    encoded = codec.encode(synthetic(64, 64, 3))
    with pytest.raises(DecodeError):
        codec.decode(encoded.payload, 0, encoded.side_info)


def test_empty_payload_is_a_decode_error() -> None:
    with pytest.raises(DecodeError):
        build("webp").decode(b"", 0, PictureSideInfo(8, 8, 3))


@pytest.mark.parametrize("name", CLASSICAL)
def test_wrong_size_is_cropped_or_padded(name: str) -> None:
    image = synthetic(64, 64, 3)
    codec = build(name)
    encoded = codec.encode(image)
    bigger = codec.decode(
        encoded.payload, encoded.n_bits, PictureSideInfo(80, 72, 3)
    )
    assert bigger.shape == (80, 72, 3)
    assert np.all(bigger[64:] == 128)
    assert np.all(bigger[:, 64:] == 128)
    assert psnr(image, bigger[:64, :64]) > 28.0
    smaller = codec.decode(
        encoded.payload, encoded.n_bits, PictureSideInfo(40, 48, 3)
    )
    assert np.array_equal(smaller, bigger[:40, :48])


@pytest.mark.parametrize("name", CLASSICAL)
def test_wrong_channels_are_converted(name: str) -> None:
    codec = build(name)
    encoded = codec.encode(synthetic(64, 64, 3))
    gray = codec.decode(encoded.payload, encoded.n_bits, replace(encoded.side_info, channels=1))
    assert gray.shape == (64, 64, 1)


@pytest.mark.parametrize("name", CLASSICAL)
def test_much_larger_image_than_expected_is_refused(name: str) -> None:
    codec = build(name)
    encoded = codec.encode(synthetic(256, 256, 3))
    with pytest.raises(DecodeError, match="beyond the expected size"):
        codec.decode(encoded.payload, encoded.n_bits, PictureSideInfo(32, 32, 3))


def test_webp_header_size_is_read() -> None:
    encoded = build("webp").encode(synthetic(96, 80, 3))
    assert _webp_size(encoded.payload) == (80, 96)
    assert _webp_size(b"RIFF") is None


# --- configuration ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "default"), [("jpeg", 75), ("webp", 75), ("avif", 60), ("heif", 50)]
)
def test_default_quality(name: str, default: int) -> None:
    config = CODECS.config({"name": name})
    assert config.quality == default
    assert config.bpp is None
    assert config.params() == {"quality": default}


def test_jpeg2000_quality_is_a_psnr_target() -> None:
    image = synthetic(128, 128, 3)
    for target in (30.0, 40.0):
        codec = build("jpeg2000", quality=target)
        encoded = codec.encode(image)
        achieved = psnr(image, codec.decode(encoded.payload, encoded.n_bits, encoded.side_info))
        assert abs(achieved - target) < 2.0


def test_bpp_config_params_and_label() -> None:
    config = CODECS.config({"name": "jpeg2000", "bpp": 0.5})
    assert config.quality is None
    assert config.params() == {"bpp": 0.5}
    assert config.label() == "jpeg2000(bpp=0.5)"


@pytest.mark.parametrize("name", CLASSICAL)
def test_quality_and_bpp_together_rejected(name: str) -> None:
    with pytest.raises(ScenarioError, match="either 'quality' or 'bpp', not both"):
        CODECS.config({"name": name, "quality": 50, "bpp": 1.0})


@pytest.mark.parametrize(
    "settings",
    [
        {"name": "jpeg", "quality": 0},
        {"name": "jpeg", "quality": 101},
        {"name": "webp", "quality": -1},
        {"name": "avif", "quality": 101},
        {"name": "heif", "quality": 200},
        {"name": "heif", "quality": 50.5},
        {"name": "jpeg2000", "quality": 0},
        {"name": "jpeg2000", "quality": float("inf")},
        {"name": "jpeg", "bpp": 0},
        {"name": "webp", "bpp": -1.0},
        {"name": "avif", "bpp": float("nan")},
        {"name": "heif", "bpp": 1000},
    ],
    ids=str,
)
def test_out_of_range_rejected(settings: dict[str, object]) -> None:
    with pytest.raises(ScenarioError) as info:
        CODECS.config(settings)
    assert info.value.field is not None
    assert info.value.field.startswith("codec.")


def test_unknown_setting_rejected() -> None:
    with pytest.raises(ScenarioError, match="unknown setting"):
        CODECS.config({"name": "jpeg", "qualty": 50})
