"""JPEG's own error-resilience tools (issue 15): restart markers, progressive mode, and the
importance order of a JPEG file's bits (``jpeg_importance``).

Claims:
- the default setting writes exactly the file it wrote before the tools existed (the same
  Pillow call), and its label and results parameters are unchanged;
- ``restart_rows: N`` writes a restart marker after every N MCU rows, ``progressive: true`` a
  progressive file; both round-trip, keep the bpp search working, and keep the decoder
  contract (any bits: a picture or DecodeError, the same answer twice, no hang);
- libjpeg-turbo resynchronises at the next restart marker: a flipped bit inside one restart
  interval changes pixels only in that interval's band of rows (and the one row on either
  side, which 4:2:0 chroma upsampling blends with it), on every flip tried;
- a progressive file with one scan's table broken (a fatal libjpeg error, where Pillow gives
  nothing) decodes to the picture of the other scans;
- ``jpeg_importance`` covers every bit exactly once, for any bytes; its first segment ends
  where the first scan's entropy-coded data starts; progressive DC scans come before the AC
  scans; restart markers stay inside their scan.
"""

from __future__ import annotations

import io

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from PIL import Image, ImageFile
from test_decoder_fuzz import FUZZ, without_hanging

from noisylink.codecs import CODECS
from noisylink.codecs.classical import JpegCodec
from noisylink.codecs.jpeg_segments import jpeg_importance, jpeg_scan_pieces, jpeg_with_scans
from noisylink.errors import DecodeError, ScenarioError
from noisylink.metrics import psnr

# The tool settings every claim is checked on (the default first).
TOOLS: list[dict[str, object]] = [
    {},
    {"restart_rows": 1},
    {"restart_rows": 2},
    {"restart_rows": 4},
    {"progressive": True},
    {"progressive": True, "restart_rows": 1},
]
TOOL_IDS = ["default", "rst1", "rst2", "rst4", "progressive", "progressive-rst1"]


def picture(height: int = 128, width: int = 128, channels: int = 3) -> np.ndarray:
    """A textured test picture: gradients, a sine texture, edges, and deterministic noise, so
    that every MCU row holds entropy-coded data worth damaging."""
    y, x = np.mgrid[0:height, 0:width].astype(np.float64)
    red = 255 * x / max(1, width - 1)
    green = 128 + 100 * np.sin(x / 3.0) * np.cos(y / 4.0)
    blue = 255 * y / max(1, height - 1)
    image = np.stack([red, green, blue], axis=-1)
    image[height // 4 : height // 2, width // 3 : 2 * width // 3] = (230, 30, 60)
    image += np.random.default_rng(5).normal(0, 12, image.shape)
    image = np.clip(np.rint(image), 0, 255).astype(np.uint8)
    if channels == 1:
        return np.rint(image @ np.array([0.299, 0.587, 0.114])).astype(np.uint8)[:, :, None]
    return image


def build(**settings: object) -> JpegCodec:
    codec = CODECS.build(CODECS.config({"name": "jpeg", **settings}))
    assert isinstance(codec, JpegCodec)
    return codec


def markers(data: bytes, low: int, high: int) -> list[int]:
    """Offsets of markers 0xFF, code in ``low..high``, in ``data`` (entropy-coded data
    stuffs 0xFF as 0xFF00, so these are real markers)."""
    return [i for i in range(len(data) - 1) if data[i] == 0xFF and low <= data[i + 1] <= high]


# --- settings and the default file -----------------------------------------------------------


@pytest.mark.parametrize("channels", [3, 1])
@pytest.mark.parametrize("settings", [{}, {"progressive": False}], ids=["unset", "false"])
def test_default_file_is_the_one_written_before(settings: dict[str, object], channels: int) -> None:
    image = picture(channels=channels)
    pil = Image.fromarray(image[:, :, 0] if channels == 1 else image)
    buffer = io.BytesIO()
    pil.save(buffer, format="JPEG", quality=75, subsampling="4:2:0", optimize=True)
    assert build(**settings).encode(image).payload == buffer.getvalue()


def test_default_params_and_label_unchanged() -> None:
    config = CODECS.config({"name": "jpeg", "progressive": False})
    assert config.params() == {"quality": 75}
    assert config.label() == "jpeg(quality=75)"


def test_tool_params_and_label() -> None:
    config = CODECS.config({"name": "jpeg", "quality": 50, "restart_rows": 2, "progressive": True})
    assert config.params() == {"quality": 50, "restart_rows": 2, "progressive": True}
    assert config.label() == "jpeg(quality=50,restart_rows=2,progressive=True)"


@pytest.mark.parametrize(
    "settings",
    [{"restart_rows": 0}, {"restart_rows": 1.5}, {"restart_rows": True}, {"progressive": "yes"},
     {"restart_rows": 70000}],
)
def test_bad_tool_settings_rejected(settings: dict[str, object]) -> None:
    with pytest.raises(ScenarioError):
        CODECS.config({"name": "jpeg", **settings})


@pytest.mark.parametrize(
    ("channels", "rows", "expected"),
    # 128 px: 8 MCU rows of 16 px in 4:2:0 colour, 16 MCU rows of 8 px in gray
    [(3, 1, 7), (3, 2, 3), (3, 4, 1), (3, 8, 0), (1, 1, 15), (1, 4, 3)],
)
def test_restart_markers_every_n_mcu_rows(channels: int, rows: int, expected: int) -> None:
    payload = build(restart_rows=rows).encode(picture(channels=channels)).payload
    assert len(markers(payload, 0xD0, 0xD7)) == expected
    assert len(markers(payload, 0xDD, 0xDD)) == 1  # one DRI


def test_progressive_writes_a_progressive_file_with_several_scans() -> None:
    payload = build(progressive=True).encode(picture()).payload
    assert markers(payload, 0xC2, 0xC2) and not markers(payload, 0xC0, 0xC0)  # SOF2, no SOF0
    assert len(markers(payload, 0xDA, 0xDA)) > 3
    assert Image.open(io.BytesIO(payload)).info.get("progressive")


@pytest.mark.parametrize("channels", [3, 1])
@pytest.mark.parametrize("settings", TOOLS, ids=TOOL_IDS)
def test_round_trip_equals_pillow(settings: dict[str, object], channels: int) -> None:
    image = picture(96, 80, channels)
    codec = build(**settings)
    encoded = codec.encode(image)
    decoded = codec.decode(encoded.payload, encoded.n_bits, encoded.side_info)
    reference = np.asarray(Image.open(io.BytesIO(encoded.payload)))
    assert np.array_equal(decoded.reshape(reference.shape), reference)
    assert psnr(image, decoded) > 25.0


@pytest.mark.parametrize("settings", TOOLS[1:], ids=TOOL_IDS[1:])
def test_bpp_search_works_with_the_tools(settings: dict[str, object]) -> None:
    image = picture()
    budget = 1.5
    encoded = build(bpp=budget, **settings).encode(image)
    assert encoded.n_bits <= budget * 128 * 128
    # the search picked a quality whose file fits while one step more no longer does
    size = {q: 8 * len(build(quality=q, **settings).encode(image).payload) for q in range(1, 101)}
    (chosen,) = [
        q for q in range(1, 101)
        if build(quality=q, **settings).encode(image).payload == encoded.payload
    ]
    assert chosen == 100 or size[chosen + 1] > budget * 128 * 128


@pytest.mark.parametrize("settings", [{"restart_rows": 1}, {"progressive": True}])
def test_tools_cost_few_bits(settings: dict[str, object]) -> None:
    image = picture()
    plain = len(build().encode(image).payload)
    with_tool = len(build(**settings).encode(image).payload)
    assert with_tool < 1.1 * plain


# --- the decoder resynchronises at restart markers --------------------------------------------


@pytest.mark.parametrize(("channels", "rows"), [(3, 1), (3, 2), (1, 1)])
def test_a_flip_in_one_restart_interval_damages_only_its_band(channels: int, rows: int) -> None:
    codec = build(restart_rows=rows)
    encoded = codec.encode(picture(channels=channels))
    payload = encoded.payload
    clean = codec.decode(payload, encoded.n_bits, encoded.side_info).astype(np.int64)
    data_start = jpeg_importance(payload)[0][1] // 8
    restarts = markers(payload, 0xD0, 0xD7)
    starts = [data_start] + [offset + 2 for offset in restarts]
    ends = [*restarts, len(payload) - 2]  # the last interval ends at EOI
    band = rows * (16 if channels == 3 else 8)
    rng = np.random.default_rng(7)
    damaged = 0
    for _ in range(120):
        interval = int(rng.integers(len(starts)))
        position = int(rng.integers(starts[interval], ends[interval]))
        corrupted = bytearray(payload)
        corrupted[position] ^= 1 << int(rng.integers(8))
        decoded = codec.decode(bytes(corrupted), encoded.n_bits, encoded.side_info)
        changed = np.nonzero(np.abs(decoded.astype(np.int64) - clean).sum(axis=(1, 2)))[0]
        if changed.size:
            damaged += 1
            assert changed.min() >= interval * band - 1
            assert changed.max() <= (interval + 1) * band
    assert damaged > 60  # the flips did damage something


def test_without_restart_markers_a_flip_damages_the_rest_of_the_image() -> None:
    """The contrast the markers make: in one scan, an early flip reaches the last rows."""
    codec = build()
    encoded = codec.encode(picture())
    payload = encoded.payload
    clean = codec.decode(payload, encoded.n_bits, encoded.side_info).astype(np.int64)
    data_start = jpeg_importance(payload)[0][1] // 8
    rng = np.random.default_rng(3)
    reach_last_band = 0
    for _ in range(40):
        position = int(rng.integers(data_start, data_start + (len(payload) - data_start) // 4))
        corrupted = bytearray(payload)
        corrupted[position] ^= 1 << int(rng.integers(8))
        try:
            decoded = codec.decode(bytes(corrupted), encoded.n_bits, encoded.side_info)
        except DecodeError:
            continue
        reach_last_band += bool(np.any(decoded[-16:].astype(np.int64) != clean[-16:]))
    assert reach_last_band > 10


@pytest.mark.parametrize("scan", [1, 2, 5, -1])
def test_a_progressive_scan_with_a_broken_table_is_left_out(scan: int) -> None:
    codec = build(progressive=True)
    image = picture()
    encoded = codec.encode(image)
    payload = encoded.payload
    cut = jpeg_scan_pieces(payload)
    assert cut is not None
    header_end, pieces = cut
    start, _ = pieces[scan]
    dht = payload.index(b"\xff\xc4", start)  # the table written for this scan
    broken = payload[: dht + 2] + b"\x00\x00" + payload[dht + 4 :]  # a bogus marker length
    with pytest.raises(OSError):  # Pillow alone shows nothing: it fails strictly, ...
        Image.open(io.BytesIO(broken)).load()
    ImageFile.LOAD_TRUNCATED_IMAGES = True
    try:  # ... and tolerating errors, it never writes a pixel
        tolerant = Image.open(io.BytesIO(broken))
        tolerant.load()
    finally:
        ImageFile.LOAD_TRUNCATED_IMAGES = False
    assert not np.asarray(tolerant).any()
    decoded = codec.decode(broken, 8 * len(broken), encoded.side_info)
    others = [piece for index, piece in enumerate(pieces) if index != scan % len(pieces)]
    expected = np.asarray(Image.open(io.BytesIO(jpeg_with_scans(payload, header_end, others))))
    assert np.array_equal(decoded, expected)
    assert psnr(image, decoded) > 18.0


def test_a_broken_frame_header_is_still_undecodable() -> None:
    codec = build(progressive=True)
    encoded = codec.encode(picture())
    payload = encoded.payload
    sof = payload.index(b"\xff\xc2")
    broken = payload[: sof + 2] + b"\x00\x00" + payload[sof + 4 :]
    with pytest.raises(DecodeError):
        codec.decode(broken, 8 * len(broken), encoded.side_info)


# --- the decoder contract with the tools ----------------------------------------------------

FUZZED = [TOOLS[2], TOOLS[4], TOOLS[5]]
FUZZED_IDS = [TOOL_IDS[2], TOOL_IDS[4], TOOL_IDS[5]]


def sample(settings: dict[str, object]) -> tuple[JpegCodec, bytes]:
    codec = build(**settings)
    return codec, codec.encode(picture(48, 40)).payload


def decode_checked(codec: JpegCodec, payload: bytes) -> None:
    """Decode twice: an image of the right shape and dtype, or DecodeError; both answers
    equal; no other exception; no hang."""
    shape = (48, 40, 3)
    info = codec.encode(picture(48, 40)).side_info
    answers: list[np.ndarray | str] = []
    for _ in range(2):
        try:
            image = without_hanging(lambda: codec.decode(payload, 8 * len(payload), info))
        except DecodeError as error:
            answers.append(str(error))
            continue
        assert image.dtype == np.uint8 and image.shape == shape
        answers.append(image)
    first, second = answers
    if isinstance(first, str) or isinstance(second, str):
        assert first == second
    else:
        assert np.array_equal(first, second)


@pytest.mark.parametrize("settings", FUZZED, ids=FUZZED_IDS)
@FUZZ
@given(rate=st.floats(1e-5, 0.5), seed=st.integers(0, 2**32 - 1))
def test_fuzz_bit_flips(settings: dict[str, object], rate: float, seed: int) -> None:
    codec, payload = sample(settings)
    bits = np.unpackbits(np.frombuffer(payload, dtype=np.uint8))
    flips = np.random.default_rng(seed).random(bits.size) < rate
    decode_checked(codec, np.packbits(bits ^ flips).tobytes())


@pytest.mark.parametrize("settings", FUZZED, ids=FUZZED_IDS)
@FUZZ
@given(data=st.data())
def test_fuzz_truncation_and_garbage_tail(settings: dict[str, object], data: st.DataObject) -> None:
    codec, payload = sample(settings)
    keep = data.draw(st.integers(0, len(payload)))
    tail = data.draw(st.binary(min_size=0, max_size=len(payload)))
    decode_checked(codec, payload[:keep] + tail)


@pytest.mark.parametrize("settings", FUZZED, ids=FUZZED_IDS)
@FUZZ
@given(data=st.data())
def test_fuzz_header_flips(settings: dict[str, object], data: st.DataObject) -> None:
    codec, payload = sample(settings)
    corrupted = bytearray(payload)
    span = min(len(corrupted), 700)
    for position in data.draw(st.lists(st.integers(0, 8 * span - 1), min_size=1, max_size=4)):
        corrupted[position // 8] ^= 1 << (position % 8)
    decode_checked(codec, bytes(corrupted))


# --- the importance order -------------------------------------------------------------------


def assert_covering(ranges: tuple[tuple[int, int], ...], n_bits: int) -> None:
    """Every bit of ``[0, n_bits)`` in exactly one range; ranges non-empty (unless the
    payload is)."""
    assert ranges, "no segments"
    cursor = 0
    for start, stop in sorted(ranges):
        assert start == cursor
        assert stop > start or n_bits == 0
        cursor = stop
    assert cursor == n_bits


def scan_start_code(payload: bytes, start_bit: int, stop_bit: int) -> int | None:
    """Ss of the (last) SOS header within the byte range, None when there is none."""
    piece = payload[start_bit // 8 : stop_bit // 8]
    at = piece.rfind(b"\xff\xda")
    if at < 0:
        return None
    components = piece[at + 4]
    return piece[at + 5 + 2 * components]


@pytest.mark.parametrize("channels", [3, 1])
@pytest.mark.parametrize("settings", TOOLS, ids=TOOL_IDS)
def test_importance_covers_every_bit_once(settings: dict[str, object], channels: int) -> None:
    payload = build(**settings).encode(picture(channels=channels)).payload
    assert_covering(jpeg_importance(payload), 8 * len(payload))


@pytest.mark.parametrize("settings", TOOLS, ids=TOOL_IDS)
def test_first_segment_ends_where_the_first_scan_data_starts(settings: dict[str, object]) -> None:
    payload = build(**settings).encode(picture()).payload
    sos = payload.index(b"\xff\xda")
    data_start = sos + 2 + int.from_bytes(payload[sos + 2 : sos + 4], "big")
    assert jpeg_importance(payload)[0] == (0, 8 * data_start)


@pytest.mark.parametrize("rows", [None, 1, 4])
def test_baseline_is_header_then_its_scan_with_the_restart_markers(rows: int | None) -> None:
    payload = build(restart_rows=rows).encode(picture()).payload
    header, scan = jpeg_importance(payload)
    assert scan == (header[1], 8 * len(payload))
    for offset in markers(payload, 0xD0, 0xD7):
        assert scan[0] <= 8 * offset < scan[1]


@pytest.mark.parametrize("channels", [3, 1])
@pytest.mark.parametrize("rows", [None, 1])
def test_progressive_dc_scans_come_before_ac_scans(rows: int | None, channels: int) -> None:
    payload = build(progressive=True, restart_rows=rows).encode(picture(channels=channels)).payload
    ranges = jpeg_importance(payload)
    n_scans = len(markers(payload, 0xDA, 0xDA))
    assert len(ranges) == 1 + n_scans  # header, then one range per scan
    codes = [scan_start_code(payload, start, stop) for start, stop in ranges[1:]]
    codes[0] = 0  # the first scan's SOS header is in the header segment (checked above)
    assert all(code is not None for code in codes)
    dc = [code == 0 for code in codes]
    assert dc[0] and sum(dc) >= 2  # the first DC scan and its refinement
    assert dc == sorted(dc, reverse=True)  # all DC scans, then all AC scans
    # each group in file order
    dc_starts = [start for (start, _), is_dc in zip(ranges[1:], dc, strict=True) if is_dc]
    ac_starts = [start for (start, _), is_dc in zip(ranges[1:], dc, strict=True) if not is_dc]
    assert dc_starts == sorted(dc_starts) and ac_starts == sorted(ac_starts)


@pytest.mark.parametrize("payload", [b"", b"\xff", b"\xff\xd8", b"not a jpeg", bytes(100)])
def test_unreadable_files_give_one_segment(payload: bytes) -> None:
    assert jpeg_importance(payload) == ((0, 8 * len(payload)),)


def test_file_without_sos_gives_one_segment() -> None:
    payload = build().encode(picture()).payload
    header_only = payload[: payload.index(b"\xff\xda")]
    assert jpeg_importance(header_only) == ((0, 8 * len(header_only)),)


@FUZZ
@given(garbage=st.binary(min_size=0, max_size=2048))
def test_importance_of_garbage_is_a_covering(garbage: bytes) -> None:
    assert_covering(jpeg_importance(garbage), 8 * len(garbage))


@pytest.mark.parametrize("settings", FUZZED, ids=FUZZED_IDS)
@FUZZ
@given(data=st.data())
def test_importance_of_damaged_files_is_a_covering(
    settings: dict[str, object], data: st.DataObject
) -> None:
    _, payload = sample(settings)
    keep = data.draw(st.integers(0, len(payload)))
    corrupted = bytearray(payload[:keep] + data.draw(st.binary(max_size=64)))
    for position in data.draw(st.lists(st.integers(0, max(0, 8 * len(corrupted) - 1)),
                                       max_size=8 if corrupted else 0)):
        corrupted[position // 8] ^= 1 << (position % 8)
    assert_covering(jpeg_importance(bytes(corrupted)), 8 * len(corrupted))
