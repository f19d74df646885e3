"""The whole link, end to end, in one process."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from noisylink.link.chain import LinkChain
from noisylink.link.frames import packetize
from noisylink.link.runner import build_plan, run_scenario
from noisylink.results.file import read_rows
from noisylink.results.row import TIMING_COLUMNS
from noisylink.scenarios import expand, parse_scenario

SMALL = {"source": "samples", "resize": 64, "size": 64, "limit": 2}


def scenario(**changes):
    data = {
        "name": "test",
        "seed": 3,
        "images": SMALL,
        "codec": {"name": "jpeg", "quality": 75},
        "frames": {"payload_bytes": 256, "header": "ideal", "on_crc_fail": "deliver"},
        "ecc": {"name": "none"},
        "channel": {"name": "bsc", "ber": 0.0},
        "trials": 2,
    } | changes
    return parse_scenario(data, "test")


def run(tmp_path: Path, name: str = "out", **changes) -> list[dict[str, str]]:
    outcome = run_scenario(scenario(**changes), tmp_path / name)
    assert outcome.results_path.exists() and outcome.manifest_path.exists()
    return read_rows(outcome.results_path)


def test_clean_channel_reproduces_the_codecs_own_decode(tmp_path: Path) -> None:
    plan = build_plan(scenario())
    shown = {}

    def keep(stream, row, image):
        shown[(stream.image, stream.trial)] = (row, image)

    import asyncio

    from noisylink.link.roles import run_in_process

    asyncio.run(run_in_process(plan, keep))
    assert len(shown) == 2 * 2
    for (image_index, _trial), (row, image) in shown.items():
        source = plan.images[image_index].pixels
        payload = plan.chain(0).codec.encode(source).payload
        expected = np.asarray(Image.open(io.BytesIO(payload)))
        expected = expected if expected.ndim == 3 else expected[:, :, None]
        assert np.array_equal(image, expected)
        assert row["decoded"] and row["post_ber"] == 0.0 and row["raw_ber"] == 0.0


def test_bandwidth_accounting_adds_up(tmp_path: Path) -> None:
    rows = run(tmp_path, ecc={"name": "rs", "k": 223}, interleaver={"name": "block", "depth": 8})
    for row in rows:
        source, overhead = int(row["source_bits"]), int(row["overhead_bits"])
        parity, channel = int(row["parity_bits"]), int(row["channel_bits"])
        assert source + overhead + parity == channel
        assert overhead >= 32 * int(row["frames"])  # at least a CRC-32 per frame
        assert float(row["ecc_overhead"]) == pytest.approx(parity / channel)
        assert float(row["ecc_rate"]) == pytest.approx(223 / 255)
        pixels = int(row["width"]) * int(row["height"])
        assert float(row["bpp_channel"]) == pytest.approx(channel / pixels)
        assert int(row["channel_uses"]) == channel


def test_same_seed_same_results_whatever_the_cell_order(tmp_path: Path) -> None:
    grid = {"ecc": [{"name": "none"}, {"name": "rs", "k": 223}],
            "channel": {"name": "bsc", "ber": [1e-3, 1e-2]}}
    first = run(tmp_path, "a", **grid)
    again = run(tmp_path, "b", **grid)
    flipped = run(tmp_path, "c", ecc=list(reversed(grid["ecc"])),
                  channel={"name": "bsc", "ber": [1e-2, 1e-3]})

    def keyed(rows):
        return {
            (r["ecc"], r["channel_value"], r["image"], r["trial"]): {
                k: v for k, v in r.items() if k not in (*TIMING_COLUMNS, "cell")
            }
            for r in rows
        }

    assert keyed(first) == keyed(again) == keyed(flipped)
    assert len(first) == 2 * 2 * 2 * 2


def test_rs_with_interleaver_removes_a_burst_that_breaks_jpeg() -> None:
    def burst_survives(ecc: dict) -> bool:
        data = scenario(ecc=ecc, interleaver={"name": "block", "depth": 16},
                        frames={"payload_bytes": 1024})
        cell = expand(data)[0]
        chain = LinkChain(cell, data.frames)
        payload = chain.codec.encode(build_plan(data).images[0].pixels).payload
        frame = packetize(payload, 1024, stream_id=1)[0]
        bits, layout = chain.encode_frame(frame)
        llr = 10.0 * (1.0 - 2.0 * bits.astype(float))
        llr[1000:1200] *= -1  # a 200-bit burst
        wire, _failed = chain.decode_frame(llr, layout)
        return wire == frame.body()

    assert not burst_survives({"name": "none"})
    assert burst_survives({"name": "rs", "k": 223})


def test_burst_channel_end_to_end(tmp_path: Path) -> None:
    channel = {"name": "gilbert_elliott", "mean_ber": 2e-3, "burst_length": 16}
    frames = {"payload_bytes": 1024}
    plain = run(tmp_path, "plain", channel=channel, trials=3, frames=frames)
    coded = run(tmp_path, "coded", channel=channel, trials=3, frames=frames,
                ecc={"name": "rs", "k": 223}, interleaver={"name": "block", "depth": 32})
    assert sum(float(r["post_ber"]) for r in plain) > 0
    assert all(float(r["post_ber"]) == 0 for r in coded)


def test_inband_headers_and_drop(tmp_path: Path) -> None:
    rows = run(tmp_path, frames={"payload_bytes": 128, "header": "inband", "on_crc_fail": "drop"},
               channel={"name": "bsc", "ber": 3e-3}, trials=2)
    assert sum(int(r["frames_lost"]) for r in rows) > 0
    for row in rows:
        assert int(row["frames_lost"]) <= int(row["frames"])
        if row["decoded"] == "false":
            assert np.isfinite(float(row["psnr"]))


def test_gray_images_and_a_symbol_channel(tmp_path: Path) -> None:
    rows = run(tmp_path, images=SMALL | {"color": "gray"}, modulation={"name": "16qam"},
               channel={"name": "awgn", "esn0_db": 30.0})
    assert all(r["decoded"] == "true" and float(r["post_ber"]) == 0 for r in rows)
    assert all(int(r["channel_uses"]) * 4 == int(r["channel_bits"]) for r in rows)


def test_undecodable_streams_show_gray_and_count_as_corrupted(tmp_path: Path) -> None:
    rows = run(tmp_path, channel={"name": "bsc", "ber": 0.5}, trials=2)
    assert all(r["decoded"] == "false" for r in rows)


def test_a_run_missing_a_row_says_which_and_is_not_complete(tmp_path: Path) -> None:
    import json

    from noisylink.link.roles import run_in_process
    from noisylink.link.runner import IncompleteRunError

    async def lossy(plan, on_row):
        def drop_one(stream, row, image):
            if (stream.image, stream.trial) != (1, 0):
                on_row(stream, row, image)

        await run_in_process(plan, drop_one)

    with pytest.raises(IncompleteRunError, match=r"1 of 4 rows missing \(cell 0 .* trial 0\)"):
        run_scenario(scenario(), tmp_path / "out", link=lossy)
    manifest = json.loads((tmp_path / "out" / "manifest.json").read_text())
    assert manifest["complete"] is False and manifest["rows"] == 3
    assert len(manifest["missing"]) == 1 and manifest["missing"][0].endswith("trial 0")
    assert len(read_rows(tmp_path / "out" / "results.csv")) == 3


def test_a_second_row_for_one_stream_stops_the_run(tmp_path: Path) -> None:
    from noisylink.errors import NoisylinkError
    from noisylink.link.roles import run_in_process

    async def doubling(plan, on_row):
        def twice(stream, row, image):
            on_row(stream, row, image)
            on_row(stream, row, image)

        await run_in_process(plan, twice)

    with pytest.raises(NoisylinkError, match="a second row for cell 0"):
        run_scenario(scenario(), tmp_path / "out", link=doubling)


def test_a_complete_run_says_so_in_its_manifest(tmp_path: Path) -> None:
    import json

    run_scenario(scenario(), tmp_path / "out")
    manifest = json.loads((tmp_path / "out" / "manifest.json").read_text())
    assert manifest["complete"] is True and manifest["rows"] == 4 and "missing" not in manifest
