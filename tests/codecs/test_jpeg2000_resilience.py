"""JPEG 2000 quality layers (issue 15) and the importance order of a JPEG 2000 file.

Claims:
- the default setting (``layers: 1``) writes exactly the file it wrote before the setting
  existed (the same Pillow call, for ``quality`` and for ``bpp``), and its label and results
  parameters are unchanged; ``layers: N`` is in the label;
- the layers' PSNR targets: the top one at ``quality``, 6 dB steps below it, the steps shrunk
  evenly above the 10 dB floor; with ``bpp`` the top layer fits the budget;
- the file order is the importance order: the codestream (parsed: SOC, main header, SOT, PLT,
  SOD, EOC) says LRCP order and N layers, and cut after layer L's packets it still decodes,
  with PSNR rising in L up to the whole file's; so the default ``importance`` (the whole
  payload, in order) is right and is kept;
- with layers the decoder contract holds: any bits give a picture or ``DecodeError``, the
  same answer twice, no hang.
"""

from __future__ import annotations

import io
import itertools
import struct

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image
from test_decoder_fuzz import FUZZ, without_hanging

from noisylink.codecs import CODECS
from noisylink.codecs.classical import Jpeg2000Codec, j2k_layer_psnrs
from noisylink.errors import DecodeError
from noisylink.metrics import psnr

# JPEG 2000 markers (ITU-T T.800 Table A.2) the parser below meets.
SOC, SOT, SOD, EOC, COD, PLT = 0xFF4F, 0xFF90, 0xFF93, 0xFFD9, 0xFF52, 0xFF58
LRCP = 0


def picture(height: int = 128, width: int = 128, channels: int = 3) -> np.ndarray:
    """A textured picture: gradients, a sine texture, an edge, deterministic noise."""
    y, x = np.mgrid[0:height, 0:width].astype(np.float64)
    image = np.stack([255 * x / (width - 1), 128 + 100 * np.sin(x / 3) * np.cos(y / 4),
                      255 * y / (height - 1)], axis=-1)
    image[height // 4 : height // 2, width // 3 : 2 * width // 3] = (230, 30, 60)
    image += np.random.default_rng(5).normal(0, 12, image.shape)
    image = np.clip(np.rint(image), 0, 255).astype(np.uint8)
    return image if channels == 3 else image[:, :, :1]


def build(**settings_: object) -> Jpeg2000Codec:
    codec = CODECS.build(CODECS.config({"name": "jpeg2000", **settings_}))
    assert isinstance(codec, Jpeg2000Codec)
    return codec


def pillow_file(image: np.ndarray, **options: object) -> bytes:
    """The file Pillow writes with the options the codec used before ``layers`` existed."""
    mode = "RGB" if image.shape[2] == 3 else "L"
    pil = Image.fromarray(image if mode == "RGB" else image[:, :, 0], mode=mode)
    buffer = io.BytesIO()
    pil.save(buffer, format="JPEG2000", no_jp2=True, irreversible=True,
             mct=1 if mode == "RGB" else 0, **options)
    return buffer.getvalue()


# --- the default is unchanged ------------------------------------------------------------


@pytest.mark.parametrize("channels", [3, 1])
@pytest.mark.parametrize("quality", [25.0, 35.0, 42.5])
def test_default_quality_file_is_the_file_written_before_layers(
    quality: float, channels: int
) -> None:
    image = picture(channels=channels)
    old = pillow_file(image, quality_mode="dB", quality_layers=[quality])
    assert build(quality=quality).encode(image).payload == old
    assert build(quality=quality, layers=1).encode(image).payload == old


def test_default_bpp_file_is_the_file_written_before_layers() -> None:
    image = picture()
    budget = 0.8 * 128 * 128
    ratio = 8 * 3 / 0.8  # the rate control's ratio, tightened as the codec always has
    while 8 * len(old := pillow_file(image, quality_mode="rates", quality_layers=[ratio])) > budget:
        ratio *= 1.02 * 8 * len(old) / budget
    assert build(bpp=0.8).encode(image).payload == old


def test_labels_leave_out_one_layer_and_name_more() -> None:
    assert CODECS.config({"name": "jpeg2000", "quality": 35.0}).label() == (
        "jpeg2000(quality=35.0)"
    )
    assert CODECS.config({"name": "jpeg2000", "quality": 35.0, "layers": 1}).params() == {
        "quality": 35.0
    }
    assert CODECS.config({"name": "jpeg2000", "bpp": 1.0, "layers": 3}).label() == (
        "jpeg2000(bpp=1.0,layers=3)"
    )


@pytest.mark.parametrize("bad", [0, 9, 2.5, True])
def test_layers_must_be_a_whole_number_from_1_to_8(bad: object) -> None:
    with pytest.raises(Exception, match="layers"):
        CODECS.config({"name": "jpeg2000", "layers": bad})


# --- layer targets ------------------------------------------------------------------------


def test_layer_targets_step_6_db_down_from_quality_above_a_10_db_floor() -> None:
    assert j2k_layer_psnrs(35.0, 1) == [35.0]
    assert j2k_layer_psnrs(35.0, 3) == [23.0, 29.0, 35.0]
    assert j2k_layer_psnrs(16.0, 3) == [10.0, 13.0, 16.0]  # squeezed above the floor
    assert j2k_layer_psnrs(8.0, 3) == [8.0, 8.0, 8.0]


@pytest.mark.parametrize("layers", [2, 3, 5])
def test_layered_file_meets_the_top_target_and_bpp_budget(layers: int) -> None:
    image = picture()
    single = build(quality=35.0).encode(image)
    layered = build(quality=35.0, layers=layers).encode(image)
    single_psnr = psnr(image, build().decode(single.payload, single.n_bits, single.side_info))
    layered_psnr = psnr(image, build().decode(layered.payload, layered.n_bits,
                                              layered.side_info))
    assert abs(layered_psnr - single_psnr) < 0.5
    budget = build(bpp=1.0, layers=layers).encode(image)
    assert budget.n_bits <= 1.0 * 128 * 128


# --- the codestream and its order ---------------------------------------------------------


def markers(data: bytes) -> tuple[dict[int, bytes], int, int, list[int]]:
    """Parse a one-tile, one-tile-part codestream written with PLT markers: the main header's
    marker segments (marker -> body), the offset of SOT, the offset of the first packet (after
    SOD), and the packet lengths the PLT segments give, in order."""
    assert struct.unpack(">H", data[:2])[0] == SOC
    main: dict[int, bytes] = {}
    offset = 2
    while struct.unpack(">H", data[offset : offset + 2])[0] != SOT:
        marker, length = struct.unpack(">HH", data[offset : offset + 4])
        main[marker] = data[offset + 4 : offset + 2 + length]
        offset += 2 + length
    sot = offset
    lengths: list[int] = []
    offset += 2 + struct.unpack(">H", data[offset + 2 : offset + 4])[0]
    while struct.unpack(">H", data[offset : offset + 2])[0] != SOD:
        marker, length = struct.unpack(">HH", data[offset : offset + 4])
        if marker == PLT:
            value = 0
            for byte in data[offset + 5 : offset + 2 + length]:  # after Zplt
                value = (value << 7) | (byte & 0x7F)
                if not byte & 0x80:
                    lengths.append(value)
                    value = 0
        offset += 2 + length
    return main, sot, offset + 2, lengths


def with_tile_part(data: bytes, sot: int, tile_header: bytes, body: bytes) -> bytes:
    """The main header, one tile part of ``tile_header`` (SOT segment .. SOD) and ``body``
    with SOT's Psot set to match, and EOC."""
    psot = len(tile_header) + len(body)
    header = tile_header[:6] + struct.pack(">I", psot) + tile_header[10:]
    return data[:sot] + header + body + struct.pack(">H", EOC)


@pytest.mark.parametrize("layers", [3, 5])
def test_the_file_holds_the_main_header_then_the_layers_in_order(layers: int) -> None:
    image = picture()
    codec = build(quality=38.0, layers=layers)
    encoded = codec.encode(image)
    pil = Image.fromarray(image, mode="RGB")
    buffer = io.BytesIO()
    pil.save(buffer, format="JPEG2000", plt=True, **codec.save_options(pil, 38.0))
    with_plt = buffer.getvalue()
    main, sot, first_packet, lengths = markers(with_plt)
    order, n_layers = struct.unpack(">BH", main[COD][1:4])
    assert (order, n_layers) == (LRCP, layers)
    body = with_plt[first_packet:-2]
    assert sum(lengths) == len(body)
    # the codec's payload is this file without its PLT segment: the same packets, in order
    tile_header = with_plt[sot : sot + 12] + struct.pack(">H", SOD)
    assert with_tile_part(with_plt, sot, tile_header, body) == encoded.payload
    # LRCP: every layer has the same packets (components x resolutions x precincts)
    assert len(lengths) % layers == 0
    per_layer = len(lengths) // layers
    ends = np.cumsum(lengths)[per_layer - 1 :: per_layer]
    psnrs = []
    for end in ends:
        cut = with_tile_part(with_plt, sot, tile_header, body[: int(end)])
        decoded = codec.decode(cut, 8 * len(cut), encoded.side_info)
        psnrs.append(psnr(image, decoded))
    assert all(low < high for low, high in itertools.pairwise(psnrs)), psnrs
    whole = codec.decode(encoded.payload, encoded.n_bits, encoded.side_info)
    assert psnrs[-1] == pytest.approx(psnr(image, whole))
    targets = j2k_layer_psnrs(38.0, layers)
    close = [abs(got - want) < 2.0 for got, want in zip(psnrs, targets, strict=True)]
    assert all(close), (psnrs, targets)
    # so the default importance order, the payload in order, is kept
    assert codec.importance(encoded.n_bits, encoded.side_info) == ((0, encoded.n_bits),)


# --- the decoder contract with layers -----------------------------------------------------

LAYERED = build(quality=35.0, layers=3)
LAYERED_ENCODED = LAYERED.encode(picture(48, 40))


def decode_twice(payload: bytes) -> None:
    """A picture of the side info's shape or DecodeError, the same answer both times."""
    info = LAYERED_ENCODED.side_info
    answers: list[object] = []
    for _ in range(2):
        try:
            image = without_hanging(lambda: LAYERED.decode(payload, 8 * len(payload), info))
        except DecodeError as error:
            answers.append(str(error))
            continue
        assert image.dtype == np.uint8 and image.shape == info.shape
        answers.append(image.tobytes())
    assert answers[0] == answers[1]


@settings(FUZZ, max_examples=200)
@given(rate=st.floats(1e-5, 0.2), seed=st.integers(0, 2**32 - 1))
def test_layered_file_survives_bit_flips(rate: float, seed: int) -> None:
    bits = np.unpackbits(np.frombuffer(LAYERED_ENCODED.payload, dtype=np.uint8))
    flips = np.random.default_rng(seed).random(bits.size) < rate
    decode_twice(np.packbits(bits ^ flips).tobytes())


@settings(FUZZ, max_examples=200)
@given(data=st.data())
def test_layered_file_survives_header_flips_and_truncation(data: st.DataObject) -> None:
    payload = bytearray(LAYERED_ENCODED.payload)
    span = min(len(payload), 256)
    for position in data.draw(st.lists(st.integers(0, 8 * span - 1), max_size=4)):
        payload[position // 8] ^= 1 << (position % 8)
    decode_twice(bytes(payload[: data.draw(st.integers(0, len(payload)))]))
