"""Classical image codecs through Pillow and pillow-heif: JPEG, WebP, JPEG 2000, AVIF, HEIF.

HEIF here is HEVC intra (x265 encoder, libde265 decoder) and stands in for BPG.

Every codec is set by exactly one of

- ``quality``: the codec's native scale (JPEG 1-100, WebP/AVIF/HEIF 0-100; for JPEG 2000 a
  target PSNR in dB, Pillow's ``quality_mode="dB"``), or
- ``bpp``: a budget in bits per pixel. The encoder picks, deterministically, the highest
  quality whose whole file fits in ``bpp * H * W`` bits (bisection over the integer quality
  scale; JPEG 2000 uses OpenJPEG's rate control, compression ratio ``8 * C / bpp``, tightened
  until the file fits). A budget no setting can meet raises ``LinkError`` (stage ``encode``).

The payload is the whole file, headers included; ``n_bits = 8 * len(payload)``. Side info is
``PictureSideInfo(height, width, channels)``: the receiver knows the image size and the codec,
nothing else.

Gray images (C=1) are stored as gray where the format allows (JPEG, JPEG 2000, AVIF 4:0:0,
HEIF monochrome) and as RGB in WebP; the decoder always gives back the side info's channels.

Decoding is built to survive any bits: the file is opened from memory with only the expected
format's plugin, dimensions declared by a corrupted header are checked before any pixel is
decoded (images much larger than expected are refused), every exception from the decoder
becomes ``DecodeError``, and an image of the wrong size or mode is converted, cropped or
padded with mid-gray (128) to the side info's shape.

A damaged JPEG or JPEG 2000 file that Pillow's strict decode rejects is decoded again
tolerating truncation and decoder errors (Pillow's ``LOAD_TRUNCATED_IMAGES``, set only for
the duration of our own decode, under a lock) into image memory pre-filled with mid-gray: what
the decoder reached is shown, the rest stays mid-gray, and a picture the decoder never wrote
to at all is a ``DecodeError``. A progressive JPEG file that still gives nothing is decoded
once more without the scans whose tables or headers make libjpeg fail (``JpegCodec._read``).
WebP, AVIF and HEIF give a picture only when their decoder finishes (their Pillow plugins
cannot return part of one).
"""

from __future__ import annotations

import abc
import io
import re
import struct
import threading
import warnings
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, ClassVar, Self

import numpy as np
import pillow_heif
import pydantic
from PIL import Image, ImageFile, UnidentifiedImageError
from pydantic_core import PydanticCustomError

from noisylink.codecs.base import CODECS, Codec, Encoded, RateKnob, Segments, SideInfo, as_hwc
from noisylink.codecs.base import Image as ImageArray
from noisylink.codecs.jpeg_segments import jpeg_importance, jpeg_scan_pieces, jpeg_with_scans
from noisylink.errors import DecodeError, LinkError
from noisylink.registry import ComponentConfig

# The one place pillow-heif's Pillow plugin is registered (HEIF open and save).
pillow_heif.register_heif_opener()

__all__ = [
    "AvifCodec",
    "AvifConfig",
    "HeifCodec",
    "HeifConfig",
    "Jpeg2000Codec",
    "Jpeg2000Config",
    "JpegCodec",
    "JpegConfig",
    "PictureSideInfo",
    "WebpCodec",
    "WebpConfig",
]

# A decoded image may differ from the expected size when its header was corrupted; anything
# larger than this (per side) is refused before its pixels are decoded.
_SIZE_FACTOR = 2
_SIZE_MARGIN = 64

# Pillow's truncation switch and the warnings filter are process globals: our decodes set
# them under this lock and restore them afterwards.
_DECODE_LOCK = threading.Lock()

# Object addresses in exception messages (" at 0x7f..."), removed so messages repeat exactly.
_ADDRESS = re.compile(r" at 0x[0-9a-fA-F]+")

# The value of pixels no decoder reached (the receiver's mid-gray).
_GRAY = 128

# How many times JPEG 2000's rate control is tightened to fit a bpp budget.
_J2K_RATE_TRIES = 12

#: The most quality layers a JPEG 2000 setting may have.
J2K_MAX_LAYERS = 8
#: PSNR step between JPEG 2000 quality layers set by ``quality`` (dB).
J2K_LAYER_STEP_DB = 6.0
#: The lowest PSNR target a JPEG 2000 layer may have (dB).
J2K_MIN_LAYER_DB = 10.0


# --- side info and configs -----------------------------------------------------------------


@dataclass(frozen=True)
class PictureSideInfo(SideInfo):
    """A classical codec's side info: the picture's shape and nothing more."""


MAX_SEGMENTS = 256  # importance segments a progressive JPEG's side info may list


@dataclass(frozen=True)
class ProgressiveJpegSideInfo(PictureSideInfo):
    """A progressive JPEG's side info: the shape, and the file's importance order
    (``jpeg_importance``: header, DC scans, AC scans) for unequal error protection, which a
    receiver cannot read from a damaged file and so gets out of band (two integers a scan)."""

    segments: tuple[tuple[int, int], ...]

    def to_json(self) -> dict[str, Any]:
        return {**super().to_json(), "segments": [list(pair) for pair in self.segments]}

    @classmethod
    def fields_from_json(cls, data: Mapping[str, object]) -> dict[str, Any]:
        segments = data.get("segments")
        if not isinstance(segments, list) or not 1 <= len(segments) <= MAX_SEGMENTS:
            raise ValueError(f"segments: must be a list of 1 to {MAX_SEGMENTS} [start, stop]")
        pairs = []
        for pair in segments:
            if not (isinstance(pair, list) and len(pair) == 2 and all(
                    isinstance(v, int) and not isinstance(v, bool) and 0 <= v < 1 << 40
                    for v in pair) and pair[0] <= pair[1]):
                raise ValueError("segments: each must be [start, stop] with 0 <= start <= stop")
            pairs.append((pair[0], pair[1]))
        return {**super().fields_from_json(data), "segments": tuple(pairs)}


class _ClassicalConfig(ComponentConfig):
    """Shared settings: exactly one of ``quality`` (native scale) or ``bpp`` (bits/pixel)."""

    default_quality: ClassVar[float]

    quality: float | None = None
    bpp: float | None = pydantic.Field(default=None, gt=0, le=64, allow_inf_nan=False)

    @pydantic.model_validator(mode="before")
    @classmethod
    def _default_quality(cls, data: Any) -> Any:
        if isinstance(data, Mapping) and data.get("quality") is None and data.get("bpp") is None:
            return {**data, "quality": cls.default_quality}
        return data

    @pydantic.model_validator(mode="after")
    def _quality_xor_bpp(self) -> Self:
        if self.quality is not None and self.bpp is not None:
            raise PydanticCustomError("quality_xor_bpp", "set either 'quality' or 'bpp', not both")
        return self

    def params(self) -> dict[str, Any]:
        """Settings other than the name, leaving out the unset one of quality/bpp."""
        return {key: value for key, value in super().params().items() if value is not None}


class JpegConfig(_ClassicalConfig):
    """JPEG (libjpeg-turbo, 4:2:0, optimised Huffman tables); quality 1-100.

    Error-resilience tools, both off by default (the file is then byte for byte the one
    written before they existed, and ``params()`` leaves them out, so labels and results stay
    as they were):

    - ``restart_rows``: a restart marker (RSTn) after every that many MCU rows (16 pixel
      rows in 4:2:0, 8 for gray). The entropy decoder restarts at each marker, so a flipped
      bit damages the rest of its own interval, not the rest of the image.
    - ``progressive``: a progressive file (spectral selection and successive approximation,
      libjpeg's default script): DC scans first, then AC scans, which ``jpeg_importance``
      ranks for unequal error protection.
    """

    default_quality: ClassVar[float] = 75
    quality: int | None = pydantic.Field(default=None, ge=1, le=100)
    restart_rows: int | None = pydantic.Field(default=None, ge=1, le=65535)
    progressive: pydantic.StrictBool = False  # true or false, not 1 or "yes"

    def params(self) -> dict[str, Any]:
        """As for every classical codec, and ``progressive`` only when set."""
        params = super().params()
        if not self.progressive:
            del params["progressive"]
        return params


class WebpConfig(_ClassicalConfig):
    """WebP lossy (libwebp, method 4); quality 0-100."""

    default_quality: ClassVar[float] = 75
    quality: int | None = pydantic.Field(default=None, ge=0, le=100)


class AvifConfig(_ClassicalConfig):
    """AVIF (libaom, speed 6, 4:2:0, one thread); quality 0-100."""

    default_quality: ClassVar[float] = 60
    quality: int | None = pydantic.Field(default=None, ge=0, le=100)


class HeifConfig(_ClassicalConfig):
    """HEIF with HEVC intra (x265, 4:2:0), standing in for BPG; quality 0-100."""

    default_quality: ClassVar[float] = 50
    quality: int | None = pydantic.Field(default=None, ge=0, le=100)


class Jpeg2000Config(_ClassicalConfig):
    """JPEG 2000 (OpenJPEG, 9/7 wavelet, raw codestream, LRCP order); quality = target PSNR
    in dB.

    ``layers``: the number of quality layers (default 1: the file is then byte for byte the
    one written before the setting existed, and ``params()`` leaves it out). The top layer
    meets the setting (``quality`` dB, or the ``bpp`` budget); each layer below it is
    ``J2K_LAYER_STEP_DB`` lower in PSNR (half the RMS error per step; the steps shrink
    evenly where the lowest would fall below ``J2K_MIN_LAYER_DB``) with ``quality``, or has
    half the bits of the one above it with ``bpp``. In LRCP order the file holds the main
    header, then layer 1's packets, then layer 2's, ...: its file order is its importance
    order, so the default ``importance`` (the whole payload in order) is the right one.

    The error-resilience switches (SOP and EPH markers, the code-block modes RESTART, ERTERM,
    SEGMARK) are not settings: Pillow's writer does not expose them, and, written through
    glymur, they made OpenJPEG's decoder lose more pictures, not fewer (docs/measured.md).
    """

    default_quality: ClassVar[float] = 35.0
    quality: float | None = pydantic.Field(default=None, gt=0, le=100, allow_inf_nan=False)
    layers: int = pydantic.Field(default=1, ge=1, le=J2K_MAX_LAYERS)

    def params(self) -> dict[str, Any]:
        """As for every classical codec, and ``layers`` only when more than one."""
        params = super().params()
        if self.layers == 1:
            del params["layers"]
        return params


def j2k_layer_psnrs(quality: float, layers: int) -> list[float]:
    """The PSNR targets (dB) of ``layers`` quality layers, lowest first: the top at
    ``quality``, each lower one ``J2K_LAYER_STEP_DB`` below the one above it, the steps
    shrunk evenly where that would take the lowest below ``J2K_MIN_LAYER_DB`` (all at
    ``quality`` when it is itself that low)."""
    if layers == 1:
        return [quality]
    step = min(J2K_LAYER_STEP_DB, max(0.0, (quality - J2K_MIN_LAYER_DB) / (layers - 1)))
    return [quality - step * (layers - 1 - index) for index in range(layers)]


def j2k_layer_ratios(ratio: float, layers: int) -> list[float]:
    """OpenJPEG compression ratios of ``layers`` quality layers, lowest first: the top at
    ``ratio``, each lower one with half the bits of the one above it."""
    return [ratio * 2.0 ** (layers - 1 - index) for index in range(layers)]


# --- shared machinery ----------------------------------------------------------------------


class _PillowCodec(Codec[PictureSideInfo]):
    """Encode with a Pillow writer, decode defensively; subclasses say which format and how.

    A damaged file may be undecodable (``always_decodable`` stays False); one file at a time.
    """

    pil_format: ClassVar[str]
    #: whether the format stores a single gray channel (else gray is sent as RGB)
    stores_gray: ClassVar[bool]
    #: whether a damaged file is decoded as far as it goes (Pillow's LOAD_TRUNCATED_IMAGES)
    partial_decode: ClassVar[bool]
    #: the quality scale, also searched (in whole steps) for a ``bpp`` budget
    rate_knobs: ClassVar[tuple[RateKnob, ...]] = (RateKnob("quality", 0, 100),)

    config: _ClassicalConfig

    def __init__(self, config: _ClassicalConfig):
        self.config = config

    # encoding

    @abc.abstractmethod
    def save_options(self, image: Image.Image, quality: float) -> dict[str, Any]:
        """Pillow ``save`` keyword arguments for one quality setting."""

    def write(self, image: Image.Image, quality: float) -> bytes:
        """The whole file for one quality setting."""
        buffer = io.BytesIO()
        image.save(buffer, format=self.pil_format, **self.save_options(image, quality))
        return buffer.getvalue()

    def fit_budget(self, image: Image.Image, budget_bits: float) -> bytes:
        """The highest-quality file of at most ``budget_bits`` (bisection; size ~ monotone)."""
        knob = self.rate_knobs[0]
        low, high = int(knob.low), int(knob.high)
        best = self.write(image, low)
        if 8 * len(best) > budget_bits:
            raise _budget_error(self.config, image, len(best))
        while low < high:
            middle = (low + high + 1) // 2
            payload = self.write(image, middle)
            if 8 * len(payload) <= budget_bits:
                low, best = middle, payload
            else:
                high = middle - 1
        return best

    def encode(self, image: ImageArray) -> Encoded[PictureSideInfo]:
        """Compress ``image`` (uint8 [H, W, C], C 1 or 3) into one file."""
        array = as_hwc(image)
        height, width, channels = array.shape
        pil_image = _to_pil(array, self.stores_gray)
        if self.config.bpp is not None:
            payload = self.fit_budget(pil_image, self.config.bpp * height * width)
        else:
            assert self.config.quality is not None
            payload = self.write(pil_image, self.config.quality)
        side_info = PictureSideInfo(height, width, channels)
        return Encoded(payload=payload, n_bits=8 * len(payload), side_info=side_info)

    # decoding

    def declared_size(self, data: bytes) -> tuple[int, int] | None:
        """(width, height) read from the file header before Pillow opens it, where the
        plugin would otherwise allocate pixel memory at open time; None when not needed."""
        return None

    def decode(self, payload: bytes, n_bits: int, side_info: PictureSideInfo) -> ImageArray:
        """The image in ``payload`` (possibly corrupted), shaped as the side info says.

        Raises ``DecodeError`` when nothing can be shown; no other exception escapes.
        """
        height, width, channels = side_info.shape
        data = bytes(payload[: max(0, (n_bits + 7) // 8)])
        if not data:
            raise DecodeError(f"{self.pil_format}: empty payload")
        limit = (_SIZE_FACTOR * width + _SIZE_MARGIN, _SIZE_FACTOR * height + _SIZE_MARGIN)
        try:
            declared = self.declared_size(data)
        except Exception as exc:
            raise _decode_error(self.pil_format, exc) from exc
        if declared is not None:
            _check_size(self.pil_format, declared, limit)
        decoded = self._read(data, limit)
        try:
            pixels = np.asarray(_convert(decoded, "L" if channels == 1 else "RGB"), np.uint8)
        except Exception as exc:
            raise _decode_error(self.pil_format, exc) from exc
        return _fit_shape(pixels.reshape(pixels.shape[0], pixels.shape[1], -1), height, width)

    def _read(self, data: bytes, limit: tuple[int, int]) -> Image.Image:
        """Open and decode ``data`` with Pillow: strictly first; where the format allows,
        again tolerating truncation and decoder errors (regions the decoder never reached
        stay mid-gray). A tolerant decode that shows nothing at all is a DecodeError."""
        with _decoding(partial=False):
            try:
                return _open_and_load(data, self.pil_format, limit)
            except DecodeError:
                raise
            except Exception as exc:
                if not self.partial_decode:
                    raise _decode_error(self.pil_format, exc) from exc
                strict_error = exc
        with _decoding(partial=True):
            try:
                decoded = _open_and_load(data, self.pil_format, limit, gray_fill=True)
                blank = bool(np.all(np.asarray(decoded) == _GRAY))
            except DecodeError:
                raise
            except Exception as exc:
                raise _decode_error(self.pil_format, exc) from exc
        if blank:
            raise DecodeError(f"{self.pil_format}: nothing decoded ({_describe(strict_error)})")
        return decoded


def _open_and_load(
    data: bytes, fmt: str, limit: tuple[int, int], *, gray_fill: bool = False
) -> Image.Image:
    """Open ``data`` as ``fmt`` only, refuse oversized images, decode the pixels.

    With ``gray_fill`` the image memory is created mid-gray before the decoder runs (Pillow
    decodes into existing memory), so what a failing decoder never wrote shows mid-gray, the
    receiver's "nothing here", rather than black.
    """
    image = Image.open(io.BytesIO(data), formats=[fmt])
    _check_size(fmt, image.size, limit)
    if gray_fill:
        if not image.tile:
            raise DecodeError(f"{fmt}: no image data")
        bands = len(image.getbands())
        image.im = Image.new(image.mode, image.size, _GRAY if bands == 1 else (_GRAY,) * bands).im
    image.load()
    return image


def _to_pil(array: ImageArray, stores_gray: bool) -> Image.Image:
    """A Pillow image of the array: mode L for gray where the format stores it, else RGB."""
    if array.shape[2] == 3:
        return Image.fromarray(array, mode="RGB")
    gray = Image.fromarray(array[:, :, 0], mode="L")
    return gray if stores_gray else gray.convert("RGB")


def _budget_error(config: _ClassicalConfig, image: Image.Image, smallest_bytes: int) -> LinkError:
    width, height = image.size
    smallest_bpp = 8 * smallest_bytes / (width * height)
    return LinkError(
        f"{config.name} cannot meet bpp={config.bpp} on a {width}x{height} image: its "
        f"smallest file is {smallest_bytes} bytes ({smallest_bpp:.3f} bpp)",
        stage="encode",
    )


def _describe(exc: Exception) -> str:
    """A decoder failure in words that are the same on every run (results record them)."""
    if isinstance(exc, UnidentifiedImageError):
        return "not a readable file of this format"
    return f"{type(exc).__name__}: {_ADDRESS.sub('', str(exc))}"


def _decode_error(fmt: str, exc: Exception) -> DecodeError:
    return DecodeError(f"{fmt}: {_describe(exc)}")


def _check_size(fmt: str, size: tuple[int, int], limit: tuple[int, int]) -> None:
    """Refuse absurd dimensions from a corrupted header before pixels are decoded."""
    width, height = size
    if width <= 0 or height <= 0 or width > limit[0] or height > limit[1]:
        raise DecodeError(f"{fmt}: header declares {width}x{height}, beyond the expected size")


@contextmanager
def _decoding(*, partial: bool) -> Iterator[None]:
    """Our decodes run one at a time with Pillow's truncation switch set as we need it
    (restored afterwards) and warnings from damaged files silenced."""
    with _DECODE_LOCK, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        previous = ImageFile.LOAD_TRUNCATED_IMAGES
        ImageFile.LOAD_TRUNCATED_IMAGES = partial
        try:
            yield
        finally:
            ImageFile.LOAD_TRUNCATED_IMAGES = previous


def _convert(image: Image.Image, mode: str) -> Image.Image:
    """``image`` in ``mode`` (L or RGB), whatever mode a damaged header produced."""
    if image.mode == mode:
        return image
    try:
        return image.convert(mode)
    except (ValueError, OSError):
        # Modes without a direct conversion (e.g. I;16 to RGB) go through L.
        return image.convert("L").convert(mode)


def _fit_shape(pixels: np.ndarray, height: int, width: int) -> ImageArray:
    """Crop or pad (mid-gray 128) a decoded image to the expected height and width."""
    if pixels.shape[:2] == (height, width):
        return np.ascontiguousarray(pixels, dtype=np.uint8)
    out = np.full((height, width, pixels.shape[2]), 128, dtype=np.uint8)
    rows, cols = min(height, pixels.shape[0]), min(width, pixels.shape[1])
    out[:rows, :cols] = pixels[:rows, :cols]
    return out


# --- the codecs ----------------------------------------------------------------------------


@CODECS.register("jpeg", JpegConfig)
class JpegCodec(_PillowCodec):
    """JPEG through libjpeg-turbo; damaged files decode as far as libjpeg gets."""

    pil_format = "JPEG"
    stores_gray = True
    partial_decode = True
    rate_knobs = (RateKnob("quality", 1, 100),)

    config: JpegConfig

    def save_options(self, image: Image.Image, quality: float) -> dict[str, Any]:
        options: dict[str, Any] = {
            "quality": int(quality), "subsampling": "4:2:0", "optimize": True,
        }
        # Only set tools are passed, so a default setting writes exactly the file it always has.
        if self.config.restart_rows is not None:
            options["restart_marker_rows"] = self.config.restart_rows
        if self.config.progressive:
            options["progressive"] = True
        return options

    def encode(self, image: ImageArray) -> Encoded[PictureSideInfo]:
        """As for every format; a progressive file's side info also carries its importance
        order (``ProgressiveJpegSideInfo``)."""
        encoded = super().encode(image)
        if not self.config.progressive:
            return encoded  # baseline: the file's own order is its importance order
        info = encoded.side_info
        side_info = ProgressiveJpegSideInfo(info.height, info.width, info.channels,
                                            jpeg_importance(encoded.payload))
        return Encoded(payload=encoded.payload, n_bits=encoded.n_bits, side_info=side_info)

    def importance(self, n_bits: int, side_info: PictureSideInfo) -> Segments:
        """Baseline: the file order (headers and tables, then the scan). Progressive: header,
        then the DC scans, then the AC scans (``jpeg_importance``, sent as side info)."""
        if isinstance(side_info, ProgressiveJpegSideInfo):
            return side_info.segments
        return super().importance(n_bits, side_info)

    def _read(self, data: bytes, limit: tuple[int, int]) -> Image.Image:
        """As for every format (strict, then tolerant); a progressive file that still gives
        nothing is decoded again without the scans that make it fail.

        libjpeg-turbo survives damaged entropy-coded data (it resynchronises at the next
        restart marker, or decodes garbage to the end of the scan), but a damaged table or
        SOS header of one scan is a fatal error that loses the whole picture, the scans
        already decoded included. So the scans are tried one at a time, in file order, each
        kept when the header with the scans kept so far and it still decodes; the picture of
        the scans kept is shown (the damaged scan's coefficients are missing, the rest is
        there). When no scan can be kept (a damaged frame header), the first error stands.
        Only for ``progressive`` settings: a baseline file has one scan, and pieces cut from a
        damaged one (at a marker a flip made) would decode to garbage rather than to less.
        """
        try:
            return super()._read(data, limit)
        except DecodeError as error:
            if not self.config.progressive:
                raise
            cut = jpeg_scan_pieces(data)
            if cut is None or len(cut[1]) < 2:
                raise
            header_end, pieces = cut
            kept: list[tuple[int, int]] = []
            picture: Image.Image | None = None
            for piece in pieces:
                candidate = jpeg_with_scans(data, header_end, [*kept, piece])
                try:
                    picture = super()._read(candidate, limit)
                except DecodeError:
                    continue
                kept.append(piece)
            if picture is None:
                raise error from None
            return picture


@CODECS.register("webp", WebpConfig)
class WebpCodec(_PillowCodec):
    """Lossy WebP through libwebp (gray sent as RGB)."""

    pil_format = "WEBP"
    stores_gray = False
    partial_decode = False

    def save_options(self, image: Image.Image, quality: float) -> dict[str, Any]:
        return {"quality": int(quality), "method": 4, "lossless": False}

    def declared_size(self, data: bytes) -> tuple[int, int] | None:
        # libwebp's animation decoder allocates the whole canvas when Pillow opens the file.
        return _webp_size(data)


@CODECS.register("avif", AvifConfig)
class AvifCodec(_PillowCodec):
    """AVIF through libavif (libaom encoder, dav1d decoder); gray as 4:0:0."""

    pil_format = "AVIF"
    stores_gray = True
    partial_decode = False

    def save_options(self, image: Image.Image, quality: float) -> dict[str, Any]:
        # One encoder thread: the same bytes on every machine, whatever its core count.
        subsampling = "4:0:0" if image.mode == "L" else "4:2:0"
        return {"quality": int(quality), "speed": 6, "subsampling": subsampling, "max_threads": 1}


@CODECS.register("heif", HeifConfig)
class HeifCodec(_PillowCodec):
    """HEIF/HEVC intra through pillow-heif (x265 encoder, libde265 decoder); BPG's stand-in."""

    pil_format = "HEIF"
    stores_gray = True
    partial_decode = False

    def save_options(self, image: Image.Image, quality: float) -> dict[str, Any]:
        options: dict[str, Any] = {"quality": int(quality), "save_nclx_profile": False}
        if image.mode != "L":
            options["chroma"] = 420
        return options


@CODECS.register("jpeg2000", Jpeg2000Config)
class Jpeg2000Codec(_PillowCodec):
    """JPEG 2000 raw codestream (.j2k) through OpenJPEG, LRCP order, ``layers`` quality
    layers; damaged files decode partially."""

    pil_format = "JPEG2000"
    stores_gray = True
    partial_decode = True
    # quality is the target PSNR (dB); OpenJPEG stops adding layers near 60 dB on 8 bits
    rate_knobs = (RateKnob("quality", 10.0, 70.0, integer=False, resolution=0.1),)

    config: Jpeg2000Config

    def save_options(self, image: Image.Image, quality: float) -> dict[str, Any]:
        targets = j2k_layer_psnrs(float(quality), self.config.layers)
        return {**self._common(image), "quality_mode": "dB", "quality_layers": targets}

    def fit_budget(self, image: Image.Image, budget_bits: float) -> bytes:
        """OpenJPEG's rate control at ratio ``8 * C / bpp``, tightened while the file (whose
        headers the rate control does not fully count) exceeds the budget."""
        assert self.config.bpp is not None
        channels = len(image.getbands())
        ratio = max(1.0, 8 * channels / self.config.bpp)
        for _ in range(_J2K_RATE_TRIES):
            payload = self._write_ratio(image, ratio)
            if 8 * len(payload) <= budget_bits:
                return payload
            ratio *= 1.02 * 8 * len(payload) / budget_bits
        raise _budget_error(self.config, image, len(payload))

    def _write_ratio(self, image: Image.Image, ratio: float) -> bytes:
        buffer = io.BytesIO()
        ratios = j2k_layer_ratios(ratio, self.config.layers)
        options = {**self._common(image), "quality_mode": "rates", "quality_layers": ratios}
        image.save(buffer, format=self.pil_format, **options)
        return buffer.getvalue()

    @staticmethod
    def _common(image: Image.Image) -> dict[str, Any]:
        # Raw codestream (no JP2 boxes): the smallest file; colour transform for RGB; layer by
        # layer (LRCP, Pillow's default, named because the importance order rests on it).
        return {
            "no_jp2": True, "irreversible": True, "mct": 1 if image.mode == "RGB" else 0,
            "progression": "LRCP",
        }


def _webp_size(data: bytes) -> tuple[int, int] | None:
    """Canvas (width, height) a WebP header declares, or None when it cannot be read."""
    if len(data) < 30 or data[:4] != b"RIFF" or data[8:12] != b"WEBP":
        return None
    chunk = data[12:16]
    if chunk == b"VP8 " and data[23:26] == b"\x9d\x01\x2a":
        width, height = struct.unpack("<HH", data[26:30])
        return width & 0x3FFF, height & 0x3FFF
    if chunk == b"VP8L" and data[20] == 0x2F:
        bits = int.from_bytes(data[21:25], "little")
        return (bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1
    if chunk == b"VP8X":
        return int.from_bytes(data[24:27], "little") + 1, int.from_bytes(data[27:30], "little") + 1
    return None
