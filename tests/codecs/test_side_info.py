"""Typed side info (``noisylink.codecs.base.SideInfo`` and its families): each codec family's
side info is the JSON object it always was, key for key and in the same order, so a link
message carrying it is byte for byte what it was; reading one back from JSON gives the same
object, and anything malformed is a one-line ``ValueError``, never a crash."""

from __future__ import annotations

import json
import struct
from dataclasses import fields
from typing import Any

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from noisylink.codecs import CODECS
from noisylink.codecs.base import SideInfo
from noisylink.codecs.classical import PictureSideInfo, ProgressiveJpegSideInfo
from noisylink.codecs.diffusion.codecs import DiffusionSideInfo
from noisylink.codecs.jpeg_segments import jpeg_importance
from noisylink.codecs.jscc.codecs import JsccSideInfo
from noisylink.link.messages import StreamId, StreamStart
from noisylink.transport import wire


def codec(settings: dict[str, Any]) -> Any:
    return CODECS.build(CODECS.config(settings))


def produced() -> list[tuple[SideInfo, dict[str, Any]]]:
    """Side info as the codecs make it, each beside the dict the codec used to make."""
    rng = np.random.default_rng(0)
    picture = rng.integers(0, 256, (24, 40, 3), dtype=np.uint8)
    digit = rng.integers(0, 256, (28, 28, 1), dtype=np.uint8)
    jpeg = codec({"name": "jpeg", "quality": 50}).encode(picture).side_info
    necst = codec({"name": "necst", "eps": 0.2}).encode(digit).side_info
    turbo = codec({"name": "turbo-ddcm", "K": 4096, "M": 20, "T": 10, "seed": 3})
    ddcm = codec({"name": "ddcm", "K": 64, "bpp": 0.5, "N": 2, "chunk_atoms": 16})
    return [
        (jpeg, {"height": 24, "width": 40, "channels": 3}),
        (necst, {"height": 28, "width": 28, "channels": 1, "model": "necst-eps0.2", "bits": 100}),
        (turbo.side_info(64, 32, 3), {
            "height": 64, "width": 32, "channels": 3, "method": "turbo", "model": "bundled",
            "K": 4096, "M": 20, "T": 10, "N": 0, "seed": 3, "chunk_atoms": 8,
        }),
        (ddcm.side_info(16, 16, 1), {
            "height": 16, "width": 16, "channels": 1, "method": "ddcm", "model": "bundled",
            "K": 64, "M": 1, "T": 21, "N": 2, "seed": 0, "chunk_atoms": 16,
        }),
    ]


def test_each_family_is_the_json_object_it_always_was_in_the_same_key_order() -> None:
    kinds = []
    for info, before in produced():
        assert list(info.to_json().items()) == list(before.items())
        again = SideInfo.from_json(json.loads(json.dumps(info.to_json())))
        assert again == info and type(again) is type(info)
        kinds.append(type(info))
    assert kinds == [PictureSideInfo, JsccSideInfo, DiffusionSideInfo, DiffusionSideInfo]


def test_a_stream_start_is_byte_for_byte_the_message_it_was() -> None:
    for info, before in produced():
        message = StreamStart(StreamId(2, 1, 0), 800, info, 3, 0.5, b"\x01\x02")
        head = {"env": {"n": 7}, "kind": "start", "stream": [2, 1, 0], "n_bits": 800,
                "side_info": before, "n_frames": 3, "encode_s": 0.5,
                "blobs": [["truth", 2, None, None]]}
        text = json.dumps(head, separators=(",", ":")).encode()
        assert wire.encode(message, n=7) == struct.pack("!I", len(text)) + text + b"\x01\x02"
        assert wire.decode(wire.encode(message, n=7))[0] == message


def test_a_progressive_jpeg_carries_its_importance_order_and_it_round_trips() -> None:
    picture = np.random.default_rng(1).integers(0, 256, (48, 64, 3), dtype=np.uint8)
    encoded = codec({"name": "jpeg", "quality": 60, "progressive": True}).encode(picture)
    info = encoded.side_info
    assert isinstance(info, ProgressiveJpegSideInfo) and len(info.segments) > 2
    assert info.segments == jpeg_importance(encoded.payload)
    again = SideInfo.from_json(json.loads(json.dumps(info.to_json())))
    assert again == info and type(again) is ProgressiveJpegSideInfo
    message = StreamStart(StreamId(0, 0, 0), encoded.n_bits, info, 3, 0.5, encoded.payload)
    assert wire.decode(wire.encode(message, n=1))[0] == message


@pytest.mark.parametrize("segments", [[], [[0]], [[5, 2]], [[0, True]], [[0, -1]], "x",
                                      [[0, 8]] * 300])
def test_malformed_segments_are_a_one_line_value_error(segments: object) -> None:
    with pytest.raises(ValueError, match="segments") as caught:
        SideInfo.from_json({**PICTURE, "segments": segments})
    assert "\n" not in str(caught.value)


def test_families_hold_distinct_field_sets_so_json_names_one_family() -> None:
    families = [PictureSideInfo, ProgressiveJpegSideInfo, JsccSideInfo, DiffusionSideInfo]
    names = [frozenset(item.name for item in fields(family)) for family in families]
    assert len(set(names)) == len(names)
    assert all(name >= {"height", "width", "channels"} for name in names)


PICTURE = {"height": 8, "width": 8, "channels": 3}
DIFFUSION = {**PICTURE, "method": "robust", "model": "bundled", "K": 64, "M": 4, "T": 3, "N": 0,
             "seed": 0, "chunk_atoms": 8}
MALFORMED: dict[str, tuple[object, str]] = {
    "not an object": ([8, 8, 3], "must be a JSON object"),
    "no field": ({}, "match no codec's side info"),
    "an extra field": ({**PICTURE, "extra": 1}, "match no codec's side info"),
    "height as text": ({**PICTURE, "height": "8"}, "height must be an integer in 1.."),
    "width a bool": ({**PICTURE, "width": True}, "width must be an integer"),
    "negative width": ({**PICTURE, "width": -8}, "width must be an integer"),
    "channels 4": ({**PICTURE, "channels": 4}, "channels must be one of 1, 3"),
    "channels 3.0": ({**PICTURE, "channels": 3.0}, "channels must be one of 1, 3"),
    "a picture too large": ({**PICTURE, "height": 1 << 15, "width": 1 << 15}, "pixels"),
    "K of 1": ({**DIFFUSION, "K": 1}, "K must be an integer in 2..65536"),
    "M of 101": ({**DIFFUSION, "M": 101}, "M must be an integer in 1..100"),
    "T huge": ({**DIFFUSION, "T": 10**30}, "T must be an integer in 1..1000"),
    "negative seed": ({**DIFFUSION, "seed": -1}, "seed must be an integer at least 0"),
    "unknown method": ({**DIFFUSION, "method": "ddim"}, "method must be one of"),
    "model a number": ({**DIFFUSION, "model": 7}, "model must be a string"),
    "a very long model": ({**DIFFUSION, "model": "m" * 5000}, "model must be a string"),
    "bits a float": ({**PICTURE, "model": "necst-eps0.1", "bits": 100.0}, "bits must be"),
}


@pytest.mark.parametrize("name", list(MALFORMED))
def test_malformed_side_info_is_a_one_line_value_error(name: str) -> None:
    data, reason = MALFORMED[name]
    with pytest.raises(ValueError, match=reason) as caught:
        SideInfo.from_json(data)
    assert "\n" not in str(caught.value) and len(str(caught.value)) < 200


def test_a_family_reads_only_its_own_fields() -> None:
    assert DiffusionSideInfo.from_json(DIFFUSION) == DiffusionSideInfo(**DIFFUSION)
    with pytest.raises(ValueError, match="must hold exactly height, width, channels, method"):
        DiffusionSideInfo.from_json(PICTURE)


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner,
                                                                max_size=4),
    max_leaves=12,
)


@given(
    value=JSON | st.fixed_dictionaries(
        {}, optional={key: JSON | st.integers() for key in DIFFUSION}
    )
)
def test_any_json_is_side_info_or_a_value_error(value: object) -> None:
    try:
        info = SideInfo.from_json(value)
    except ValueError as exc:
        assert "\n" not in str(exc)
    else:
        assert SideInfo.from_json(info.to_json()) == info
