"""Figures of a results folder: written, valid PNGs; Pareto front; one-line errors."""

from __future__ import annotations

import csv
import json
import math
import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from noisylink.errors import NoisylinkError
from noisylink.plots import mean_ci, pareto_front, write_plots
from noisylink.results.row import COLUMNS

CODECS = (("jpeg", {"quality": 50}, 1.2), ("webp", {"quality": 70}, 0.9))
ECCS = (("none", 0, 0.0), ("rs(k=223)", 223, 32 / 255))


def synthetic_rows(
    scenario: str, channel: str, param: str, values: list[float], *, snr: bool = False
) -> list[dict[str, object]]:
    """2 codecs × 2 ECC × the channel values × 2 images × 2 trials, with plausible numbers."""
    rng = np.random.default_rng(0)
    rows: list[dict[str, object]] = []
    cell = 0
    for codec, codec_params, bpp_source in CODECS:
        for ecc, k, share in ECCS:
            for value in values:
                badness = 1 / (1 + math.exp(value - 6)) if snr else min(1.0, value * 200)
                if ecc != "none":
                    badness /= 3
                for image in ("kodim01", "kodim02"):
                    for trial in range(2):
                        bpp_channel = bpp_source * 1.02 / (1 - share)
                        psnr = 35 - 25 * badness + rng.normal(0, 1)
                        decoded = rng.random() > badness
                        pixels = 64 * 64
                        channel_bits = round(bpp_channel * pixels)
                        row = {
                            "scenario": scenario, "cell": cell, "cell_id": f"c{cell:04x}",
                            "codec": codec, "codec_params": json.dumps(codec_params),
                            "ecc": ecc, "ecc_params": json.dumps({"k": k} if k else {}),
                            "ecc_rate": 1 - share, "interleaver": "none",
                            "modulation": "qpsk" if snr else "", "channel": channel,
                            "channel_params": json.dumps({param: value}),
                            "channel_param": param, "channel_value": repr(float(value)),
                            "trial": trial, "image": image, "width": 64, "height": 64,
                            "source_bits": round(bpp_source * pixels), "overhead_bits": 40,
                            "parity_bits": round(share * channel_bits),
                            "channel_bits": channel_bits, "channel_uses": channel_bits,
                            "bpp_source": bpp_source, "bpp_channel": bpp_channel,
                            "ecc_overhead": share, "raw_ber": 0.0, "post_ber": 0.0,
                            "frames": 3, "frames_crc_failed": 0, "frames_lost": 0,
                            "ecc_blocks_failed": 0, "decoded": "true" if decoded else "false",
                            "decode_error": "" if decoded else "bad data",
                            "psnr": psnr if decoded else 8.0,
                            "ssim": min(1.0, psnr / 40) if decoded else 0.1,
                            "ms_ssim": "", "mse": 10.0,
                            "encode_s": 0.01, "ecc_decode_s": 0.01, "decode_s": 0.01,
                        }
                        rows.append(row)
                cell += 1
    return rows


def write_results(run_dir: Path, rows: list[dict[str, object]]) -> Path:
    run_dir.mkdir(parents=True, exist_ok=True)
    with (run_dir / "results.csv").open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=COLUMNS)
        writer.writeheader()
        writer.writerows(rows)
    return run_dir


def assert_valid_pngs(paths: list[Path]) -> None:
    for path in paths:
        assert path.is_file() and path.stat().st_size > 0, path
        with Image.open(path) as image:
            assert image.format == "PNG"
            assert image.width > 100 and image.height > 100


def names(paths: list[Path]) -> list[str]:
    return sorted(path.name for path in paths)


@pytest.mark.slow
def test_bsc_sweep_with_zero_and_awgn_sweep_in_one_file(tmp_path: Path) -> None:
    rows = synthetic_rows("jpeg-bsc", "bsc", "ber", [0.0, 1e-4, 1e-3, 1e-2])
    rows += synthetic_rows("qpsk-awgn", "awgn", "esn0_db", [2.0, 6.0, 10.0], snr=True)
    run_dir = write_results(tmp_path / "run", rows)
    written = write_plots(run_dir)
    assert names(written) == sorted([
        "jpeg-bsc-quality-vs-ber.png", "jpeg-bsc-corruption-vs-ber.png",
        "jpeg-bsc-quality-vs-bandwidth.png", "qpsk-awgn-quality-vs-esn0_db.png",
        "qpsk-awgn-corruption-vs-esn0_db.png", "qpsk-awgn-quality-vs-bandwidth.png",
    ])
    assert all(path.parent == run_dir / "plots" for path in written)
    assert_valid_pngs(written)


def test_one_channel_value_gives_only_the_bandwidth_figure(tmp_path: Path) -> None:
    run_dir = write_results(tmp_path, synthetic_rows("one", "bsc", "ber", [0.0]))
    written = write_plots(run_dir)
    assert names(written) == ["one-quality-vs-bandwidth.png"]
    assert_valid_pngs(written)


@pytest.mark.slow
def test_examples_grid_when_example_files_exist(tmp_path: Path) -> None:
    rows = synthetic_rows("ex", "bsc", "ber", [0.0, 1e-3])
    run_dir = write_results(tmp_path, rows)
    folder = run_dir / "examples" / "ex"
    folder.mkdir(parents=True)
    rng = np.random.default_rng(1)
    Image.fromarray(rng.integers(0, 255, (32, 32, 3), dtype=np.uint8)).save(folder / "source.png")
    for cell_id in sorted({str(row["cell_id"]) for row in rows})[:-1]:  # one tile missing
        pixels = rng.integers(0, 255, (32, 32), dtype=np.uint8)
        Image.fromarray(pixels).save(folder / f"{cell_id}.png")
    written = write_plots(run_dir)
    assert "ex-examples.png" in names(written)
    assert_valid_pngs(written)


@pytest.mark.slow
def test_examples_grid_skipped_without_examples(tmp_path: Path) -> None:
    run_dir = write_results(tmp_path, synthetic_rows("ex", "bsc", "ber", [0.0, 1e-3]))
    assert "ex-examples.png" not in names(write_plots(run_dir))
    (run_dir / "examples" / "ex").mkdir(parents=True)  # an empty folder: still nothing to show
    assert "ex-examples.png" not in names(write_plots(run_dir))


def test_pareto_front() -> None:
    points = [
        (1.0, 20.0),  # 0: cheapest: on the front
        (2.0, 30.0),  # 1: on the front
        (2.0, 25.0),  # 2: same cost as 1, less gain: beaten
        (3.0, 30.0),  # 3: more cost, same gain as 1: beaten
        (4.0, 35.0),  # 4: on the front
        (2.0, 30.0),  # 5: tie with 1: neither beats the other
        (1.5, 10.0),  # 6: beaten by 0
        (math.nan, 50.0),  # 7: missing: never on the front
    ]
    assert pareto_front(points) == [0, 1, 5, 4]
    assert pareto_front([]) == []
    assert pareto_front([(1.0, 1.0)]) == [0]


def test_mean_ci() -> None:
    mean, half = mean_ci([1.0, 2.0, 3.0, math.nan])
    assert mean == pytest.approx(2.0)
    assert half == pytest.approx(4.302652729749464 / math.sqrt(3))
    assert mean_ci([5.0]) == (5.0, 0.0)
    assert all(math.isnan(v) for v in mean_ci([]))


def test_missing_folder(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere"
    with pytest.raises(NoisylinkError, match="nowhere") as info:
        write_plots(missing)
    assert str(missing) in str(info.value) and "\n" not in str(info.value)


def test_missing_results_csv(tmp_path: Path) -> None:
    with pytest.raises(NoisylinkError) as info:
        write_plots(tmp_path)
    assert str(tmp_path / "results.csv") in str(info.value)


def test_header_only_and_empty_results_csv(tmp_path: Path) -> None:
    run_dir = write_results(tmp_path, [])
    with pytest.raises(NoisylinkError, match="no result rows") as info:
        write_plots(run_dir)
    assert str(run_dir / "results.csv") in str(info.value)
    (run_dir / "results.csv").write_text("")
    with pytest.raises(NoisylinkError, match=r"results\.csv"):
        write_plots(run_dir)


def test_missing_columns(tmp_path: Path) -> None:
    (tmp_path / "results.csv").write_text("scenario,codec\nx,jpeg\n")
    from noisylink.results.row import COLUMNS

    more = len(COLUMNS) - 6  # scenario and codec are there, four are named
    missing = f"other columns, missing: setting, cell, cell_id, codec_label and {more} more"
    with pytest.raises(NoisylinkError, match=missing) as info:
        write_plots(tmp_path)
    assert str(tmp_path / "results.csv") in str(info.value)


def test_bad_number(tmp_path: Path) -> None:
    rows = synthetic_rows("s", "bsc", "ber", [0.0])
    rows[1]["psnr"] = "lots"
    run_dir = write_results(tmp_path, rows)
    with pytest.raises(NoisylinkError, match=r"line 3: column psnr is not a number"):
        write_plots(run_dir)


@pytest.mark.parametrize(("damage", "message"), [
    (lambda line: line[:30] + b"\xff" + line[30:], "line 3: not UTF-8 text"),
    (lambda line: b",".join(line.split(b",")[:10]), f"line 3: 10 fields, the header has "
                                                      f"{len(COLUMNS)}"),
    (lambda line: line.replace(b",kodim01,", b",kodim01,x,"),
     f"line 3: {len(COLUMNS) + 1} fields, the header has {len(COLUMNS)}"),
])
def test_a_damaged_results_file_is_one_line_naming_the_line(
    tmp_path: Path, damage: object, message: str
) -> None:
    run_dir = write_results(tmp_path, synthetic_rows("s", "bsc", "ber", [0.0, 1e-3]))
    path = run_dir / "results.csv"
    lines = path.read_bytes().split(b"\n")
    lines[2] = damage(lines[2].removesuffix(b"\r"))  # type: ignore[operator]
    path.write_bytes(b"\n".join(lines))
    with pytest.raises(NoisylinkError) as info:
        write_plots(run_dir)
    assert str(info.value) == f"{path}: {message}"


@pytest.mark.slow
def test_a_last_line_still_being_written_is_left_out(tmp_path: Path) -> None:
    rows = synthetic_rows("s", "bsc", "ber", [0.0, 1e-3])
    run_dir = write_results(tmp_path, rows)
    with (run_dir / "results.csv").open("a") as handle:
        handle.write("other,0,c0000,jpeg,")  # a sweep in the middle of appending a row
    assert names(write_plots(run_dir)) == [
        "s-corruption-vs-ber.png",
        "s-quality-vs-bandwidth.png", "s-quality-vs-ber.png"]


def test_rows_of_one_scenario_under_two_settings_are_refused(tmp_path: Path) -> None:
    rows = synthetic_rows("s", "bsc", "ber", [0.0, 1e-3])
    for index, row in enumerate(rows):
        row["setting"] = "0123456789abcdef" if index % 3 else "fedcba9876543210"
    run_dir = write_results(tmp_path, rows)
    with pytest.raises(NoisylinkError, match="scenario s has rows of 2 different settings"):
        write_plots(run_dir)


def test_a_plots_path_that_is_a_file_is_one_line(tmp_path: Path) -> None:
    run_dir = write_results(tmp_path, synthetic_rows("s", "bsc", "ber", [0.0]))
    (run_dir / "plots").write_text("a file")
    with pytest.raises(NoisylinkError) as info:
        write_plots(run_dir)
    assert str(info.value) == f"{run_dir / 'plots'}: the plots folder is a file, not a folder"


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only folders")
def test_an_unwritable_plots_folder_is_one_line(tmp_path: Path) -> None:
    run_dir = write_results(tmp_path, synthetic_rows("s", "bsc", "ber", [0.0]))
    (run_dir / "plots").mkdir()
    (run_dir / "plots").chmod(0o555)
    try:
        with pytest.raises(NoisylinkError, match="plots folder is not writable"):
            write_plots(run_dir)
    finally:
        (run_dir / "plots").chmod(0o755)
