"""Image sources: the built-in samples or a folder, shaped as the scenario says.

The built-in samples are the test pictures that ship inside scikit-image (``skimage.data``),
so they need no network and no data folder. The built-in ``digits`` are 300 MNIST test digits
(28x28 gray) written into the package by ``noisylink export-digits``. Images come out as
``uint8 [H, W, C]``, C 1 or 3.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
from numpy.typing import NDArray
from PIL import Image as PILImage

from noisylink.errors import ScenarioError
from noisylink.scenarios.schema import ImagesSpec

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


def _load_file(path: Path) -> NDArray[np.uint8]:
    try:
        with PILImage.open(path) as image:
            mode = "L" if image.mode in ("1", "L", "I", "I;16", "F") else "RGB"
            return np.asarray(image.convert(mode), dtype=np.uint8)
    except (OSError, ValueError, PILImage.DecompressionBombError) as exc:
        raise ScenarioError(f"cannot read image: {exc}", source=str(path)) from None


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
        pixels = _load_file(spec.path.expanduser() / name)
    return SourceImage(name, shape_image(pixels, spec))


def load_images(spec: ImagesSpec) -> list[SourceImage]:
    return [load_image(spec, name) for name in image_names(spec)]
