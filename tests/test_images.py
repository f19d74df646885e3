"""Image files of every mode Pillow opens become the 8-bit picture the rules say, or one line.

Each expected array is computed by hand from the rules in ``noisylink/images.py``: 16-bit
samples keep their high byte, float gray in [0, 1] is scaled by 255, alpha is dropped, CMYK is
(255 - C)(255 - K)/255 per channel.
"""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from noisylink.errors import ScenarioError
from noisylink.images import MAX_SIDE, load_image, read_image_file, shape_image, to_eight_bit
from noisylink.scenarios.schema import ImagesSpec

# 16-bit samples and their high bytes (v >> 8), by hand: 0x0000, 0x00FF, 0x0100, 0x0101,
# 0x8080, 0xFF00, 0xFFFF.
SIXTEEN = [0, 255, 256, 257, 32896, 65280, 65535]
SIXTEEN_AS_8 = [0, 0, 1, 1, 128, 255, 255]


def png_bytes(samples: np.ndarray, colour_type: int) -> bytes:
    """A 16-bit PNG written by hand (zlib + struct), so Pillow's writer plays no part."""
    height, width = samples.shape[:2]
    rows = samples.reshape(height, -1).astype(">u2")
    raw = b"".join(b"\x00" + row.tobytes() for row in rows)  # filter type 0 per row

    def chunk(kind: bytes, data: bytes) -> bytes:
        crc = zlib.crc32(kind + data) & 0xFFFFFFFF
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)

    header = struct.pack(">IIBBBBB", width, height, 16, colour_type, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(raw))
            + chunk(b"IEND", b""))


def write_png16(path: Path, samples: np.ndarray, colour_type: int) -> Path:
    path.write_bytes(png_bytes(samples, colour_type))
    return path


def test_sixteen_bit_gray_png_is_scaled_not_clipped(tmp_path: Path) -> None:
    path = write_png16(tmp_path / "gray16.png", np.array([SIXTEEN], dtype=np.uint16), 0)
    with Image.open(path) as image:
        assert image.mode.startswith("I")  # Pillow's 16-bit gray
    np.testing.assert_array_equal(read_image_file(path), [SIXTEEN_AS_8])


def test_sixteen_bit_gray_png_through_a_folder_scenario_keeps_its_levels(tmp_path: Path) -> None:
    ramp = np.tile(np.arange(0, 65536, 1024, dtype=np.uint16), (16, 1))  # 16 x 64
    write_png16(tmp_path / "ramp.png", ramp, 0)
    source = load_image(ImagesSpec(source="folder", path=tmp_path), "ramp.png")
    assert source.pixels.shape == (16, 64, 1)
    np.testing.assert_array_equal(source.pixels[:, :, 0], (ramp >> 8).astype(np.uint8))
    assert source.pixels.max() == 252 and source.pixels.min() == 0  # not all white


def test_big_endian_sixteen_bit_gray_tiff_is_scaled(tmp_path: Path) -> None:
    samples = np.array([SIXTEEN], dtype=">u2")
    image = Image.frombytes("I;16B", (len(SIXTEEN), 1), samples.tobytes())
    image.save(tmp_path / "gray16b.tif")
    with Image.open(tmp_path / "gray16b.tif") as reopened:
        assert reopened.mode == "I;16B"
    np.testing.assert_array_equal(read_image_file(tmp_path / "gray16b.tif"), [SIXTEEN_AS_8])


def test_sixteen_bit_pgm_opened_as_32_bit_int_is_scaled(tmp_path: Path) -> None:
    path = tmp_path / "gray16.pgm"
    path.write_bytes(b"P5\n7 1\n65535\n" + np.array(SIXTEEN, dtype=">u2").tobytes())
    with Image.open(path) as image:
        assert image.mode == "I"
    np.testing.assert_array_equal(read_image_file(path), [SIXTEEN_AS_8])


def test_32_bit_int_tiff_within_16_bits_is_scaled_and_beyond_is_refused(tmp_path: Path) -> None:
    import tifffile

    tifffile.imwrite(tmp_path / "int32.tif", np.array([SIXTEEN], dtype=np.int32))
    np.testing.assert_array_equal(read_image_file(tmp_path / "int32.tif"), [SIXTEEN_AS_8])
    tifffile.imwrite(tmp_path / "big.tif", np.array([[0, 70000]], dtype=np.int32))
    tifffile.imwrite(tmp_path / "signed.tif", np.array([[-5, 10]], dtype=np.int16))
    for name in ("big.tif", "signed.tif"):
        with pytest.raises(ScenarioError, match=r"outside 0\.\.65535") as info:
            read_image_file(tmp_path / name)
        assert info.value.source == str(tmp_path / name) and "\n" not in str(info.value)


def test_float_tiff_in_zero_one_is_scaled_by_255(tmp_path: Path) -> None:
    import tifffile

    values = np.array([[0.0, 0.25, 0.5, 0.999, 1.0]], dtype=np.float32)
    tifffile.imwrite(tmp_path / "unit.tif", values)
    with Image.open(tmp_path / "unit.tif") as image:
        assert image.mode == "F"
    # 255 x: 0, 63.75, 127.5, 254.745, 255 -> rounded (half to even)
    np.testing.assert_array_equal(read_image_file(tmp_path / "unit.tif"), [[0, 64, 128, 255, 255]])


def test_float_tiff_in_zero_255_is_rounded_as_is(tmp_path: Path) -> None:
    import tifffile

    tifffile.imwrite(tmp_path / "levels.tif", np.array([[0, 2.0, 100.4, 254.6]], np.float32))
    np.testing.assert_array_equal(read_image_file(tmp_path / "levels.tif"), [[0, 2, 100, 255]])


@pytest.mark.parametrize("values", [[-0.5, 0.5], [0.0, 300.0], [0.0, np.nan]])
def test_float_tiff_out_of_range_is_refused_not_clipped(tmp_path: Path, values: list) -> None:
    import tifffile

    path = tmp_path / "odd.tif"
    tifffile.imwrite(path, np.array([values], dtype=np.float32))
    with pytest.raises(ScenarioError, match="cannot read image: float pixels") as info:
        read_image_file(path)
    assert str(path) in str(info.value) and "\n" not in str(info.value)


def test_sixteen_bit_rgb_png_keeps_high_bytes(tmp_path: Path) -> None:
    samples = np.array([[[0, 257, 65535], [32896, 255, 65280]]], dtype=np.uint16)
    path = write_png16(tmp_path / "rgb16.png", samples, 2)
    np.testing.assert_array_equal(read_image_file(path), [[[0, 1, 255], [128, 0, 255]]])


def test_sixteen_bit_rgba_png_keeps_high_bytes_and_drops_alpha(tmp_path: Path) -> None:
    samples = np.array([[[0, 257, 65535, 0], [32896, 255, 65280, 65535]]], dtype=np.uint16)
    path = write_png16(tmp_path / "rgba16.png", samples, 6)
    np.testing.assert_array_equal(read_image_file(path), [[[0, 1, 255], [128, 0, 255]]])


def test_sixteen_bit_gray_alpha_png_stays_gray(tmp_path: Path) -> None:
    samples = np.array([[[257, 0], [32896, 65535], [65535, 1000]]], dtype=np.uint16)
    path = write_png16(tmp_path / "la16.png", samples, 4)
    pixels = read_image_file(path)
    np.testing.assert_array_equal(pixels, [[1, 128, 255]])
    source = load_image(ImagesSpec(source="folder", path=tmp_path), "la16.png")
    assert source.pixels.shape == (1, 3, 1)


def test_eight_bit_gray_alpha_png_gives_its_gray(tmp_path: Path) -> None:
    pixels = np.array([[[10, 0], [200, 255], [77, 128]]], dtype=np.uint8)
    Image.fromarray(pixels, mode="LA").save(tmp_path / "la.png")
    np.testing.assert_array_equal(read_image_file(tmp_path / "la.png"), [[10, 200, 77]])


def test_rgba_png_drops_alpha_without_compositing(tmp_path: Path) -> None:
    pixels = np.array([[[10, 20, 30, 0], [200, 100, 50, 128]]], dtype=np.uint8)
    Image.fromarray(pixels, mode="RGBA").save(tmp_path / "rgba.png")
    np.testing.assert_array_equal(read_image_file(tmp_path / "rgba.png"),
                                  [[[10, 20, 30], [200, 100, 50]]])


@pytest.mark.parametrize("transparent", [False, True])
def test_palette_png_gives_its_palette_colours(tmp_path: Path, transparent: bool) -> None:
    image = Image.new("P", (3, 1))
    image.putpalette([10, 20, 30, 200, 100, 50, 0, 255, 7])
    for x, index in enumerate((1, 0, 2)):
        image.putpixel((x, 0), index)
    options = {"transparency": 0} if transparent else {}
    image.save(tmp_path / "palette.png", **options)
    with Image.open(tmp_path / "palette.png") as reopened:
        assert reopened.mode == "P" and ("transparency" in reopened.info) == transparent
    np.testing.assert_array_equal(read_image_file(tmp_path / "palette.png"),
                                  [[[200, 100, 50], [10, 20, 30], [0, 255, 7]]])


def test_cmyk_tiff_is_converted_to_rgb(tmp_path: Path) -> None:
    cmyk = np.array([[[0, 128, 255, 0], [0, 128, 255, 51], [255, 0, 0, 0]]], dtype=np.uint8)
    Image.fromarray(cmyk, mode="CMYK").save(tmp_path / "cmyk.tif")
    # (255 - C)(255 - K) / 255, rounded: K=0 -> 255 - C; K=51 -> (255 - C) * 204 / 255
    expected = [[[255, 127, 0], [204, 102, 0], [0, 255, 255]]]
    np.testing.assert_array_equal(read_image_file(tmp_path / "cmyk.tif"), expected)


def test_one_bit_image_is_black_and_white(tmp_path: Path) -> None:
    image = Image.new("1", (3, 1))
    image.putpixel((1, 0), 1)
    image.save(tmp_path / "bits.png")
    np.testing.assert_array_equal(read_image_file(tmp_path / "bits.png"), [[0, 255, 0]])


def test_eight_bit_gray_and_rgb_pass_unchanged(tmp_path: Path) -> None:
    gray = np.arange(12, dtype=np.uint8).reshape(3, 4) * 20
    rgb = np.arange(36, dtype=np.uint8).reshape(3, 4, 3) * 7
    Image.fromarray(gray).save(tmp_path / "gray.png")
    Image.fromarray(rgb).save(tmp_path / "rgb.png")
    np.testing.assert_array_equal(read_image_file(tmp_path / "gray.png"), gray)
    np.testing.assert_array_equal(read_image_file(tmp_path / "rgb.png"), rgb)


def test_modes_without_a_rule_are_refused() -> None:
    for mode in ("LAB", "HSV"):
        with pytest.raises(ValueError, match=f"unsupported image mode {mode}"):
            to_eight_bit(Image.new(mode, (2, 2)))


@pytest.mark.parametrize("content", [b"", b"not a picture at all", "truncated"])
def test_unreadable_files_are_one_line_naming_the_file(tmp_path: Path, content) -> None:
    path = tmp_path / "bad.png"
    if content == "truncated":
        noise = np.random.default_rng(0).integers(0, 256, (64, 64, 3), dtype=np.uint8)
        Image.fromarray(noise).save(path)
        content = path.read_bytes()[:2000]
    path.write_bytes(content)
    with pytest.raises(ScenarioError, match="cannot read image") as info:
        load_image(ImagesSpec(source="folder", path=tmp_path), "bad.png")
    assert info.value.source == str(path)
    assert "\n" not in str(info.value)


def test_a_resize_beyond_the_pixel_bound_is_refused_before_allocating() -> None:
    thin = np.zeros((8, 4000, 1), dtype=np.uint8)  # resize 4096 would make 4096 x 2048000
    with pytest.raises(ScenarioError, match=f"exceeds {MAX_SIDE}x{MAX_SIDE} pixels") as info:
        shape_image(thin, ImagesSpec(resize=4096))
    assert info.value.field == "images.resize"
    with pytest.raises(ScenarioError) as info:
        shape_image(thin, ImagesSpec(size=1024))  # scaled up to cover the crop first
    assert info.value.field == "images.size"
    square = shape_image(np.zeros((8, 8, 1), dtype=np.uint8), ImagesSpec(size=64))
    assert square.shape == (64, 64, 1)
