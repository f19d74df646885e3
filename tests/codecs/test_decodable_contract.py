"""The codec contract's class-level facts, and the one rule for "decoded" that follows from it.

Every codec subclasses ``Codec`` and declares ``always_decodable``, ``batches`` and
``uses_model``; the link reads them directly. A stream of which no frame arrived is
``decoded = false`` and shown mid-gray for every codec, always-decodable ones included.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from diffusion_models import tiny_pixel_prior

from noisylink.codecs import CODECS, Codec, codec_class, gray_image
from noisylink.codecs.classical import JpegCodec
from noisylink.codecs.diffusion.codecs import DdcmCodec
from noisylink.link import roles
from noisylink.link.roles import run_in_process
from noisylink.link.runner import build_plan
from noisylink.scenarios import parse_scenario
from noisylink.sweeps.ray_engine import wants_gpu
from noisylink.sweeps.tasks import CellTask

# (always_decodable, batches, uses_model) of every codec the project ships.
FACTS = {
    "jpeg": (False, False, False),
    "webp": (False, False, False),
    "avif": (False, False, False),
    "heif": (False, False, False),
    "jpeg2000": (False, False, False),
    "necst": (True, False, True),
    "iabf": (True, False, True),
    "ddcm": (True, True, True),
    "turbo-ddcm": (True, True, True),
    "robust-turbo-ddcm": (True, True, True),
    "hyperprior": (False, False, False),
    "diffc": (True, False, True),
}


def tiny_ddcm(**changes: Any) -> dict[str, Any]:
    """DDCM on the tiny random pixel prior, short enough for a test."""
    return {"name": "ddcm", "model": str(tiny_pixel_prior()), "K": 64, "T": 6} | changes


SAMPLES = {"source": "samples", "resize": 16, "size": 16, "limit": 2}
DIGITS = {"source": "digits", "limit": 2, "color": "gray"}


def run_link(data: dict[str, Any]) -> list[tuple[dict[str, Any], np.ndarray, np.ndarray]]:
    """Run a scenario in this process: (row, picture shown, source image) per stream."""
    plan = build_plan(parse_scenario({"name": "contract", "seed": 5, "device": "cpu"} | data,
                                     "test"))
    shown: list[tuple[dict[str, Any], np.ndarray, np.ndarray]] = []

    def keep(stream: Any, row: dict[str, Any], image: np.ndarray) -> None:
        shown.append((row, image, plan.images[stream.image].pixels))

    asyncio.run(run_in_process(plan, keep))
    return shown


# --- the contract on the classes --------------------------------------------------------------


@pytest.mark.parametrize("name", CODECS.names())
def test_every_registered_codec_subclasses_the_codec_contract(name: str) -> None:
    assert issubclass(codec_class(name), Codec)


@pytest.mark.parametrize("name", sorted(FACTS))
def test_codecs_declare_if_they_always_decode_batch_and_use_a_model(name: str) -> None:
    codec = codec_class(name)
    assert (codec.always_decodable, codec.batches, codec.uses_model) == FACTS[name]


def test_the_ray_engine_asks_for_a_gpu_exactly_for_codecs_that_use_a_model() -> None:
    scenario = parse_scenario({
        "name": "gpu", "device": "cuda", "images": DIGITS,
        "codec": [{"name": "jpeg"}, {"name": "necst"}, tiny_ddcm()],
        "channel": {"name": "bsc", "ber": 0.0},
    }, "test")
    asks = [wants_gpu(CellTask(scenario, cell, ()), cluster_has_gpu=True) for cell in range(3)]
    assert asks == [False, True, True]


def test_a_codec_without_batching_gets_the_default_loops() -> None:
    codec = CODECS.build(CODECS.config({"name": "jpeg", "quality": 50}))
    images = [np.full((16, 16, 3), value, dtype=np.uint8) for value in (30, 200)]
    encoded = codec.encode_batch(images)
    assert [e.payload for e in encoded] == [codec.encode(image).payload for image in images]
    decoded = codec.decode_batch([(e.payload, e.n_bits, e.side_info) for e in encoded])
    for one, image in zip(decoded, images, strict=True):
        assert one.shape == image.shape
    assert codec.batch_size == 1
    codec.bind_device("cuda")  # no model: nothing to bind, nothing fails


# --- one rule for "decoded" -------------------------------------------------------------------

# Channels and framings under which no frame of any stream arrives.
NOTHING_ARRIVES = {
    "inband-header-erased": ({"payload_bytes": 4, "header": "inband"}, {"name": "bec", "p": 1.0}),
    "drop-on-crc-fail": ({"payload_bytes": 4, "on_crc_fail": "drop"}, {"name": "bsc", "ber": 0.5}),
}
CODEC_CASES = {
    "necst": ({"name": "necst", "eps": 0.1}, DIGITS),
    "ddcm": (tiny_ddcm(batch=3), SAMPLES),
    "jpeg": ({"name": "jpeg", "quality": 50}, SAMPLES),
}


@pytest.mark.parametrize("losing", sorted(NOTHING_ARRIVES))
@pytest.mark.parametrize("codec", sorted(CODEC_CASES))
def test_a_stream_of_which_no_frame_arrived_is_not_decoded_whatever_the_codec(
    codec: str, losing: str
) -> None:
    frames, channel = NOTHING_ARRIVES[losing]
    settings, images = CODEC_CASES[codec]
    shown = run_link({"images": images, "codec": settings, "frames": frames,
                      "channel": channel, "trials": 4})
    assert len(shown) == 2 * 4
    for row, picture, source in shown:
        assert row["frames_lost"] == row["frames"] > 0
        assert row["decoded"] is False and row["decode_error"] == "no frame arrived"
        assert np.array_equal(picture, gray_image(*source.shape))


@pytest.mark.parametrize("codec", ["necst", "ddcm"])
def test_always_decodable_codecs_decode_every_stream_of_which_a_frame_arrived(
    codec: str,
) -> None:
    settings, images = CODEC_CASES[codec]
    shown = run_link({"images": images, "codec": settings,
                      "frames": {"payload_bytes": 1, "header": "inband", "on_crc_fail": "drop"},
                      "channel": {"name": "bsc", "ber": 0.01}, "trials": 6})
    rows = [row for row, _, _ in shown]
    arrived = [row for row in rows if row["frames_lost"] < row["frames"]]
    assert arrived and any(row["frames_lost"] > 0 for row in arrived)
    assert all(row["decoded"] is True for row in arrived)
    assert all(row["decoded"] is False for row in rows if row["frames_lost"] == row["frames"])


# --- batching is the codec's own fact ---------------------------------------------------------


def test_only_codecs_that_batch_get_their_streams_in_groups(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    groups: list[tuple[str, int]] = []
    encode_batches: list[tuple[str, int]] = []
    decode = roles.decode_receptions

    def recording(receptions: Any, shapes: Any) -> Any:
        groups.append((receptions[0].chain.cell.codec.name, len(receptions)))
        return decode(receptions, shapes)

    def batch_of(codec_type: type[Codec]) -> Any:
        original = codec_type.encode_batch

        def counting(self: Codec, images: Any) -> Any:
            encode_batches.append((self.config.name, len(images)))
            return original(self, images)

        return counting

    monkeypatch.setattr(roles, "decode_receptions", recording)
    monkeypatch.setattr(JpegCodec, "encode_batch", batch_of(JpegCodec))
    monkeypatch.setattr(DdcmCodec, "encode_batch", batch_of(DdcmCodec))
    shown = run_link({"images": SAMPLES, "codec": [{"name": "jpeg"}, tiny_ddcm(batch=3)],
                      "channel": {"name": "bsc", "ber": 0.0}, "trials": 4})
    assert len(shown) == 2 * 2 * 4
    assert [size for name, size in groups if name == "jpeg"] == [1] * 8
    assert [size for name, size in groups if name == "ddcm"] == [3, 3, 2]
    assert encode_batches == [("ddcm", 2)]  # both images at once; JPEG one by one
