"""Image sources: the built-in samples or a folder, shaped as the scenario says.

The built-in samples are the test pictures that ship inside scikit-image (``skimage.data``),
so they need no network and no data folder. The built-in ``digits`` are 300 MNIST test digits
(28x28 gray) written into the package by ``noisylink export-digits``. Images come out as
``uint8 [H, W, C]``, C 1 or 3.

Files are read with Pillow and turned into 8-bit gray or RGB by these rules, never by clipping:

- 8-bit gray (``1``, ``L``) stays gray; ``RGB``, ``CMYK`` (Pillow's conversion: each channel
  (255 - C)(255 - K)/255), ``YCbCr`` and palette images (``P``, with or without transparency)
  become RGB.
- Alpha is dropped, not composited: ``LA`` gives its gray, ``RGBA``/``PA`` their colours.
- 16-bit samples keep their high byte, ``v >> 8`` (65535 -> 255, 32896 -> 128, 255 -> 0): what
  Pillow itself does with 16-bit colour PNGs, so 16-bit gray and colour files agree; it is at
  most one level below ``round(v / 257)``. Gray 16-bit comes as ``I;16*``, or as ``I`` (32-bit
  int: values must lie in 0..65535, else the file is refused).
- 32-bit float gray (``F``): values in [0, 1] are scaled by 255, values in [0, 255] are taken
  as they are, both rounded to the nearest level (half to even); anything else (negative,
  above 255, NaN) is refused rather than clipped.
- Any other mode (``LAB``, ``HSV``, ...), or a file Pillow cannot read, is a one-line
  ``ScenarioError`` naming the file.

``resize`` and ``size`` are bounded by the schema (``MAX_SIDE``); a resize whose result would
exceed ``MAX_SIDE`` x ``MAX_SIDE`` pixels (a long thin image) is refused too.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
from numpy.typing import NDArray
from PIL import Image as PILImage

from noisylink.errors import ScenarioError
from noisylink.scenarios.schema import MAX_SIDE, ImagesSpec

SAMPLE_NAMES = (
    "astronaut",
    "coffee",
    "chelsea",
    "camera",
    "rocket",
    "immunohistochemistry",
    "hubble_deep_field",
    "moon",
)
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".ppm", ".pgm", ".webp")


@dataclass(frozen=True)
class SourceImage:
    name: str
    pixels: NDArray[np.uint8]


def _load_sample(name: str) -> NDArray[np.uint8]:
    import skimage.data

    return np.asarray(getattr(skimage.data, name)(), dtype=np.uint8)


DIGITS_FILE = Path(__file__).parent / "data" / "mnist-test-digits.npz"


@lru_cache(maxsize=1)
def bundled_digits() -> NDArray[np.uint8]:
    """The bundled MNIST test digits, ``[N, 28, 28]`` uint8."""
    with np.load(DIGITS_FILE) as data:
        return np.asarray(data["digits"], dtype=np.uint8)


def digit_name(index: int) -> str:
    return f"digit-{index:03d}"


_GRAY_MODES = ("1", "L")
_COLOUR_MODES = ("RGB", "RGBX", "CMYK", "YCbCr", "P")
_ALPHA_MODES = ("LA", "RGBA", "PA")
_SIXTEEN_BIT_GRAY = ("I;16", "I;16L", "I;16B", "I;16N")
# PNG colour type 4: gray + alpha (Pillow opens its 16-bit form as RGBA, gray in R, G and B).
_PNG_GRAY_ALPHA = 4


def _png_colour_type(path: Path) -> int | None:
    """The colour type in a PNG's IHDR (always the first chunk), or None if not a PNG."""
    with path.open("rb") as file:
        head = file.read(26)
    if len(head) < 26 or not head.startswith(b"\x89PNG\r\n\x1a\n") or head[12:16] != b"IHDR":
        return None
    return head[25]


def _high_byte(values: NDArray[np.int64], what: str) -> NDArray[np.uint8]:
    """16-bit samples (0..65535) as 8-bit: the high byte."""
    if values.size and (values.min() < 0 or values.max() > 65535):
        raise ValueError(
            f"{what} values span {values.min()}..{values.max()}, outside 0..65535"
        )
    return (values >> 8).astype(np.uint8)


def _float_levels(values: NDArray[np.floating]) -> NDArray[np.uint8]:
    """Float gray as 8-bit: [0, 1] scaled by 255, [0, 255] as is, rounded; else refused."""
    if values.size == 0:
        return values.astype(np.uint8)
    if not np.isfinite(values).all():
        raise ValueError("float pixels include NaN or infinity")
    low, high = float(values.min()), float(values.max())
    if low < 0 or high > 255:
        raise ValueError(f"float pixels span {low:g}..{high:g}, outside [0, 1] and [0, 255]")
    scale = 255.0 if high <= 1.0 else 1.0
    return np.rint(values.astype(np.float64) * scale).astype(np.uint8)


def to_eight_bit(image: PILImage.Image, png_colour_type: int | None = None) -> NDArray[np.uint8]:
    """An opened Pillow image as uint8 ``[H, W]`` (gray) or ``[H, W, 3]`` (RGB).

    The rules are the module docstring's; a mode they do not cover raises ValueError.
    """
    mode = image.mode
    if mode in _GRAY_MODES:
        return np.asarray(image.convert("L"), dtype=np.uint8)
    if mode in _SIXTEEN_BIT_GRAY or mode == "I":
        return _high_byte(np.asarray(image).astype(np.int64), f"{mode} (16-bit gray)")
    if mode == "F":
        return _float_levels(np.asarray(image))
    if mode == "LA":
        return np.asarray(image, dtype=np.uint8)[:, :, 0].copy()
    if mode == "RGBA" and png_colour_type == _PNG_GRAY_ALPHA:
        return np.asarray(image, dtype=np.uint8)[:, :, 0].copy()
    if mode in ("P", "PA"):  # through RGBA: the palette's colours, transparency dropped
        return np.asarray(image.convert("RGBA"), dtype=np.uint8)[:, :, :3].copy()
    if mode in _COLOUR_MODES or mode in _ALPHA_MODES:
        return np.asarray(image.convert("RGB"), dtype=np.uint8)
    raise ValueError(f"unsupported image mode {mode}")


def read_image_file(path: Path) -> NDArray[np.uint8]:
    """A picture file as uint8 gray ``[H, W]`` or RGB ``[H, W, 3]``; one-line errors naming it."""
    try:
        with PILImage.open(path) as image:
            colour_type = _png_colour_type(path) if image.format == "PNG" else None
            return to_eight_bit(image, colour_type)
    except (
        OSError, ValueError, SyntaxError, EOFError, struct.error, PILImage.DecompressionBombError
    ) as exc:
        message = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise ScenarioError(f"cannot read image: {message}", source=str(path)) from None


def shape_image(pixels: NDArray[np.uint8], spec: ImagesSpec) -> NDArray[np.uint8]:
    """Colour conversion, resize of the shorter side, then center crop, as ``spec`` says."""
    array = pixels[:, :, None] if pixels.ndim == 2 else pixels[:, :, :3]
    if spec.color == "gray" and array.shape[2] == 3:
        array = np.asarray(PILImage.fromarray(array).convert("L"))[:, :, None]
    elif spec.color == "rgb" and array.shape[2] == 1:
        array = np.repeat(array, 3, axis=2)
    target_short = spec.resize
    if spec.size is not None and min(array.shape[:2]) < spec.size:
        target_short = max(target_short or 0, spec.size)
    if target_short is not None:
        height, width = array.shape[:2]
        scale = target_short / min(height, width)
        new_size = (max(1, round(width * scale)), max(1, round(height * scale)))
        if new_size[0] * new_size[1] > MAX_SIDE * MAX_SIDE:
            raise ScenarioError(
                f"scaling a {width}x{height} image to {new_size[0]}x{new_size[1]} exceeds "
                f"{MAX_SIDE}x{MAX_SIDE} pixels; lower resize/size",
                field="images.resize" if spec.resize is not None else "images.size",
            )
        image = PILImage.fromarray(array[:, :, 0] if array.shape[2] == 1 else array)
        array = np.asarray(image.resize(new_size, PILImage.Resampling.LANCZOS))
        array = array[:, :, None] if array.ndim == 2 else array
    if spec.size is not None:
        height, width = array.shape[:2]
        top, left = (height - spec.size) // 2, (width - spec.size) // 2
        array = array[top : top + spec.size, left : left + spec.size]
    return np.ascontiguousarray(array, dtype=np.uint8)


def image_names(spec: ImagesSpec) -> list[str]:
    """Names of the images a spec selects, in order (cheap: reads no pixels)."""
    if spec.source == "samples":
        names = list(SAMPLE_NAMES)
    elif spec.source == "digits":
        names = [digit_name(i) for i in range(len(bundled_digits()))]
    else:
        assert spec.path is not None
        folder = spec.path.expanduser()
        if not folder.is_dir():
            raise ScenarioError("no such image folder", source=str(folder), field="images.path")
        names = sorted(p.name for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
        if not names:
            raise ScenarioError("folder holds no images", source=str(folder), field="images.path")
    return names[: spec.limit] if spec.limit else names


def load_image(spec: ImagesSpec, name: str) -> SourceImage:
    """One selected image, shaped."""
    if spec.source == "samples":
        pixels = _load_sample(name)
    elif spec.source == "digits":
        pixels = bundled_digits()[int(name.removeprefix("digit-"))]
    else:
        assert spec.path is not None
        path = spec.path.expanduser() / name
        try:
            return SourceImage(name, shape_image(read_image_file(path), spec))
        except ScenarioError as exc:  # name the file whatever went wrong
            raise ScenarioError(exc.message, source=str(path), field=exc.field) from None
    return SourceImage(name, shape_image(pixels, spec))


def load_images(spec: ImagesSpec) -> list[SourceImage]:
    return [load_image(spec, name) for name in image_names(spec)]
