"""Unequal error protection: importance order, classes, frames, accounting, end to end."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from noisylink.codecs.base import codec_class
from noisylink.errors import ScenarioError
from noisylink.link.chain import LinkChain
from noisylink.link.frames import chunk_lengths
from noisylink.link.ordering import check_segments, from_importance_order, to_importance_order
from noisylink.link.runner import run_scenario
from noisylink.phy.bits import bits_to_bytes, bytes_to_bits
from noisylink.phy.ecc import ECCS, protection_of
from noisylink.phy.ecc.unequal import UnequalConfig
from noisylink.results.file import read_rows
from noisylink.scenarios import expand, parse_scenario

SMALL = {"source": "samples", "resize": 64, "size": 64, "limit": 2}
UEP = {"name": "unequal", "classes": [{"name": "rs", "k": 127}, {"name": "none"}],
       "split": [0.4]}


def scenario(**changes):
    data = {
        "name": "uep",
        "seed": 3,
        "images": SMALL,
        "codec": {"name": "jpeg", "quality": 75},
        "frames": {"payload_bytes": 128, "header": "ideal", "on_crc_fail": "deliver"},
        "ecc": UEP,
        "channel": {"name": "bsc", "ber": 0.0},
        "trials": 2,
    } | changes
    return parse_scenario(data, "test")


def chain_of(**changes) -> LinkChain:
    data = scenario(**changes)
    return LinkChain(expand(data)[0], data.frames)


# ---- the setting ----------------------------------------------------------------------------


def test_an_unequal_setting_validates_its_classes_and_labels_each_share() -> None:
    config = ECCS.config(UEP)
    assert isinstance(config, UnequalConfig)
    assert config.label() == "unequal(rs(k=127)@0.4,none)"
    assert protection_of(config).shares == pytest.approx((0.4, 0.6))


@pytest.mark.parametrize(("change", "field", "words"), [
    ({"split": [0.4, 0.3]}, "ecc.split", "needs 1 fractions for 2 classes"),
    ({"split": [1.2]}, "ecc.split", "(0, 1)"),
    ({"split": [0.6, 0.5], "classes": [{"name": "none"}] * 3}, "ecc.split", "less than 1"),
    ({"classes": [{"name": "rs"}]}, "ecc.classes", "2 to 8 codes"),
    ({"classes": [{"name": "rs"}, {"name": "turbo"}]}, "ecc.classes", "classes.1.name"),
    ({"classes": [{"name": "rs"}, {"name": "rs", "k": 300}]}, "ecc.classes", "classes.1.k"),
    ({"classes": [{"name": "rs"}, dict(UEP)]}, "ecc.classes", "unequal inside unequal"),
])
def test_a_bad_unequal_setting_is_one_line_naming_the_field(change, field, words) -> None:
    with pytest.raises(ScenarioError) as caught:
        scenario(ecc=UEP | change)
    message = str(caught.value)
    assert "\n" not in message and field in message and words in message


def test_a_list_of_splits_sweeps_them_and_one_list_is_one_setting() -> None:
    cells = expand(scenario(ecc=UEP | {"split": [[0.2], [0.5]]}))
    assert [cell.ecc.split for cell in cells] == [(0.2,), (0.5,)]
    assert len(expand(scenario())) == 1


# ---- importance order -----------------------------------------------------------------------


@st.composite
def payload_and_segments(draw):
    n_bits = draw(st.integers(0, 300))
    cuts = sorted(draw(st.lists(st.integers(0, n_bits), max_size=6)))
    bounds = [0, *cuts, n_bits]
    segments = [(bounds[i], bounds[i + 1]) for i in range(len(bounds) - 1)]
    order = draw(st.permutations(segments))
    payload = draw(st.binary(min_size=-(-n_bits // 8), max_size=-(-n_bits // 8)))
    if n_bits % 8:  # the payload's padding bits are zero, as a codec's are
        bits = bytes_to_bits(payload)
        bits[n_bits:] = 0
        payload = bits_to_bytes(bits)
    return payload, n_bits, tuple(order)


@settings(max_examples=200, deadline=None)
@given(payload_and_segments())
def test_importance_order_is_undone_exactly(case) -> None:
    payload, n_bits, segments = case
    check_segments(segments, n_bits)
    ordered = to_importance_order(payload, n_bits, segments)
    assert len(ordered) == len(payload)
    assert from_importance_order(ordered, n_bits, segments) == payload
    first = segments[0] if segments else (0, 0)
    length = first[1] - first[0]
    assert np.array_equal(bytes_to_bits(ordered)[:length],
                          bytes_to_bits(payload)[first[0]:first[1]])


@pytest.mark.parametrize("segments", [((0, 10),), ((0, 10), (5, 16)), ((0, 8), (9, 16)),
                                      ((0, 17),)])
def test_segments_that_do_not_cover_the_payload_once_are_refused(segments) -> None:
    with pytest.raises(ValueError):
        check_segments(segments, 16)


# ---- classes and frames ---------------------------------------------------------------------


@pytest.mark.parametrize("n_bytes", [0, 1, 2, 99, 128, 1000, 4097])
def test_class_bytes_split_the_payload_at_the_rounded_fractions(n_bytes: int) -> None:
    protection = protection_of(ECCS.config(UEP | {
        "classes": [{"name": "none"}] * 3, "split": [0.25, 0.35]}))
    sizes = protection.class_bytes(n_bytes)
    assert sum(sizes) == n_bytes and min(sizes) >= 0
    assert sizes[0] == round(0.25 * n_bytes) and sizes[0] + sizes[1] == round(0.6 * n_bytes)


def test_with_one_code_the_frames_are_the_plain_chunks() -> None:
    chain = chain_of(ecc={"name": "rs", "k": 223})
    for n_bytes in (0, 1, 128, 129, 1000):
        plan = chain.frame_plan(n_bytes)
        assert [f.length for f in plan] == chunk_lengths(n_bytes, 128)
        assert {f.ecc_class for f in plan} == {0}


def test_each_class_gets_its_own_frames_and_its_own_code() -> None:
    chain = chain_of()
    plan = chain.frame_plan(1000)  # classes of 400 and 600 bytes, frames of at most 128
    assert [(f.ecc_class, f.length) for f in plan] == (
        [(0, 128)] * 3 + [(0, 16)] + [(1, 128)] * 4 + [(1, 88)])
    layouts = chain.frame_layouts(1000)
    assert all(layout.parity_bits > 0 for layout in layouts[:4])
    assert all(layout.parity_bits == 0 for layout in layouts[4:])
    assert chain.stream_channel_bits(1000) == sum(layout.channel_bits for layout in layouts)


def test_errors_in_a_class_land_only_in_that_class_s_segments(monkeypatch) -> None:
    """Corrupting only the weak class's frames corrupts only the payload bits it carries."""
    segments = ((300, 800), (0, 300), (800, 1000))  # a codec's importance order
    monkeypatch.setattr(codec_class("jpeg"), "importance", lambda self, n, info: segments)
    chain = chain_of()
    payload = bytes(np.random.default_rng(0).integers(0, 256, 125, dtype=np.uint8))
    frames = chain.packetize(payload, 1000, None, stream_id=7)
    assert [f.header.seq for f in frames] == list(range(len(frames)))
    ordered = bytearray(b"".join(f.chunk for f in frames))
    weak = sum(f.header.length for f in frames if f.ecc_class == 0)  # 50 bytes = 400 bits
    ordered[weak:] = bytes(255 - b for b in ordered[weak:])  # every bit of class 1 flipped
    back = chain.restore_order(bytes(ordered), 1000, None)
    wrong = np.flatnonzero(bytes_to_bits(back) != bytes_to_bits(payload))
    carried_by_class_1 = set(range(700, 800)) | set(range(0, 300)) | set(range(800, 1000))
    assert set(wrong.tolist()) == carried_by_class_1


# ---- end to end -----------------------------------------------------------------------------


def test_a_clean_unequal_link_delivers_the_payload_and_counts_every_bit(
    tmp_path: Path, monkeypatch
) -> None:
    """On a clean channel the picture equals the one-code link's, whatever the order, and
    the columns add up: channel = source + overhead + parity, parity = sum over classes."""
    monkeypatch.setattr(codec_class("jpeg"), "importance",
                        lambda self, n, info: ((n // 2, n), (0, n // 2)))
    short = {"name": "rs", "k": 127, "shortened": True}
    short_uep = UEP | {"classes": [short, {"name": "none"}]}
    rows = read_rows(run_scenario(
        scenario(ecc=[{"name": "rs", "k": 223}, UEP, short_uep]), tmp_path / "out").results_path)
    assert len(rows) == 3 * 2 * 2
    by_ecc = {}
    for row in rows:
        assert float(row["post_ber"]) == 0.0 and row["decoded"] == "true"
        assert int(row["channel_bits"]) == (int(row["source_bits"]) + int(row["overhead_bits"])
                                            + int(row["parity_bits"]))
        classes = [int(x) for x in row["class_parity_bits"].split("/")]
        assert sum(classes) == int(row["parity_bits"])
        by_ecc.setdefault(row["ecc"], {})[(row["image"], row["trial"])] = row
    plain, unequal = by_ecc["rs(k=223)"], by_ecc["unequal(rs(k=127)@0.4,none)"]
    shortened = by_ecc["unequal(rs(k=127,shortened=True)@0.4,none)"]
    for key, row in unequal.items():
        assert row["psnr"] == plain[key]["psnr"] == shortened[key]["psnr"]
        first, second = (int(x) for x in row["class_parity_bits"].split("/"))
        assert first > 0 and second == 0
        # Shortening saves exactly the padding of each first-class frame's last block.
        assert shortened[key]["class_parity_bits"] == row["class_parity_bits"]
        chain = chain_of(ecc=short_uep)
        padding = sum(8 * 127 * -(-layout.wire_bits // (8 * 127)) - layout.wire_bits
                      for layout in chain.frame_layouts(int(row["source_bits"]) // 8)
                      if layout.ecc_class == 0)
        assert padding > 0
        assert int(shortened[key]["channel_bits"]) == int(row["channel_bits"]) - padding



@pytest.mark.parametrize("progressive", [False, True])
def test_jpeg_orders_its_bits_header_then_dc_then_ac_and_decodes_the_same(
    tmp_path: Path, progressive: bool
) -> None:
    """Baseline JPEG keeps its file order; a progressive one sends its header and DC scans
    first (its side info says where they lie); either way a clean link shows the picture the
    one-code link shows."""
    jpeg = {"name": "jpeg", "quality": 75, "progressive": progressive}
    chain = chain_of(codec=jpeg)
    encoded = chain.codec.encode(np.random.default_rng(2).integers(0, 256, (64, 64, 3),
                                                                   dtype=np.uint8))
    segments = chain.segments(encoded.n_bits, encoded.side_info)
    if progressive:
        assert segments != ((0, encoded.n_bits),) and segments[0][0] == 0
        assert [start for start, _ in segments] != sorted(start for start, _ in segments)
    else:
        assert segments == ((0, encoded.n_bits),)
    rows = read_rows(run_scenario(scenario(codec=jpeg, ecc=[{"name": "rs", "k": 223}, UEP]),
                                  tmp_path / "out").results_path)
    psnr = {}
    for row in rows:
        assert float(row["post_ber"]) == 0.0
        psnr.setdefault((row["image"], row["trial"]), set()).add(row["psnr"])
    assert all(len(values) == 1 for values in psnr.values())
