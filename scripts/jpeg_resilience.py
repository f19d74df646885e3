"""Measure JPEG's own resilience tools on a bare BSC and print the table of docs/measured.md.

    python scripts/jpeg_resilience.py [--out DIR] [--trials N] [--samples]

Runs ``scripts/jpeg_resilience.yaml`` through the project's own link (``noisylink run``:
quality 75, restart markers every N MCU rows for N in none/1/2/4, baseline and progressive,
no ECC, ideal headers, corrupted frames delivered, BSC at BER 0, 1e-5, 1e-4, 1e-3) and
summarises its ``results.csv`` per codec setting:

- **bits**: mean payload size (source bits) and its increase over plain baseline JPEG at the
  same quality, per image (the same images go through every setting);
- **PSNR clean**: mean PSNR at BER 0;
- **header** and **+DC**: the share of the payload's bits in ``jpeg_importance``'s first
  segment (everything before the first scan's data), and in it with the DC scans (progressive;
  for baseline the one scan holds DC and AC), the mean over the images: what unequal error
  protection would protect most;
- per BER, **corrupted** (the undecodable fraction, ``decoded = false``) and **PSNR**: the
  mean over every trial, undecodable ones counted at the mid-gray picture the receiver shows.

``--samples`` uses the scikit-image sample pictures instead of the McMaster folder (for a
machine without the shared data); ``--trials`` overrides the scenario's trial count.
"""

from __future__ import annotations

import argparse
import csv
import json
import tempfile
from collections import defaultdict
from pathlib import Path

import yaml
from scenario_runs import run_scenario

SCENARIO = Path(__file__).with_name("jpeg_resilience.yaml")


def run(out: Path, trials: int | None, samples: bool) -> Path:
    """Write the effective scenario into ``out`` and run it there; the results file."""
    return run_scenario(yaml.safe_load(SCENARIO.read_text()), out, trials, samples)


def setting_name(params: dict[str, object]) -> str:
    mode = "progressive" if params.get("progressive") else "baseline"
    rows = params.get("restart_rows")
    return f"{mode}, " + (f"RST every {rows} MCU row{'s' if rows != 1 else ''}" if rows
                          else "no RST")


def importance_shares(scenario: Path, params: dict[str, object]) -> tuple[float, float]:
    """Mean share of the header segment, and of header + DC scans, in the payload's bits."""
    from noisylink.codecs import CODECS
    from noisylink.codecs.jpeg_segments import jpeg_importance, jpeg_scan_pieces
    from noisylink.images import load_images
    from noisylink.scenarios.schema import ImagesSpec

    spec = ImagesSpec.model_validate(yaml.safe_load(scenario.read_text())["images"])
    codec = CODECS.build(CODECS.config({"name": "jpeg", **params}))
    header, with_dc = [], []
    for image in load_images(spec):
        payload = codec.encode(image.pixels).payload
        ranges = jpeg_importance(payload)
        cut = jpeg_scan_pieces(payload)
        assert cut is not None
        n_dc = sum(_is_dc(payload, start) for start, _ in cut[1])
        header.append((ranges[0][1] - ranges[0][0]) / (8 * len(payload)))
        with_dc.append(sum(stop - start for start, stop in ranges[: 1 + n_dc]) / (8 * len(payload)))
    return sum(header) / len(header), sum(with_dc) / len(with_dc)


def _is_dc(payload: bytes, sos_search_from: int) -> bool:
    """Whether the first SOS at or after a byte offset starts at coefficient 0."""
    at = payload.index(b"\xff\xda", sos_search_from)
    components = payload[at + 4]
    return payload[at + 5 + 2 * components] == 0


def table(results: Path) -> str:
    rows = list(csv.DictReader(results.open()))
    bers = sorted({float(row["channel_value"]) for row in rows})
    settings: dict[str, list[dict[str, str]]] = defaultdict(list)
    for row in rows:
        settings[row["codec_params"]].append(row)
    # payload bits per (setting, image): the same at every BER and trial
    bits: dict[str, dict[str, int]] = {
        key: {row["image"]: int(row["source_bits"]) for row in group}
        for key, group in settings.items()
    }
    plain = next(key for key in settings if json.loads(key) == {"quality": 75})
    noisy = [ber for ber in bers if ber > 0]
    head = ["setting", "bits (mean)", "cost", "header", "+DC", "PSNR clean"]
    names = [f"{ber:.0e}".replace("e-0", "e-") for ber in noisy]
    head += [f"corrupted @{name}" for name in names] + [f"PSNR @{name}" for name in names]
    lines = ["| " + " | ".join(head) + " |", "|" + " --- |" * len(head)]
    for key, group in settings.items():
        per_image = bits[key]
        mean_bits = sum(per_image.values()) / len(per_image)
        cost = sum(per_image[image] / bits[plain][image] for image in per_image) / len(per_image)

        def at(ber: float, group: list[dict[str, str]] = group) -> list[dict[str, str]]:
            return [row for row in group if float(row["channel_value"]) == ber]

        clean = at(0.0)
        header, with_dc = importance_shares(results.parent.parent / "scenario.yaml",
                                            json.loads(key))
        cells = [setting_name(json.loads(key)), f"{mean_bits:.0f}", f"{100 * (cost - 1):+.1f} %",
                 f"{100 * header:.1f} %", f"{100 * with_dc:.1f} %",
                 f"{_mean(clean, 'psnr'):.2f}" if clean else "-"]
        for ber in noisy:
            trials = at(ber)
            undecodable = sum(row["decoded"] == "false" for row in trials) / len(trials)
            cells.append(f"{100 * undecodable:.1f} %")
        cells += [f"{_mean(at(ber), 'psnr'):.2f}" for ber in noisy]
        lines.append("| " + " | ".join(cells) + " |")
    n_images = len(next(iter(bits.values())))
    n_trials = len({row["trial"] for row in rows})
    lines.append("")
    lines.append(f"{n_images} images x {n_trials} trials per cell")
    return "\n".join(lines)


def _mean(rows: list[dict[str, str]], column: str) -> float:
    return sum(float(row[column]) for row in rows) / len(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument("--trials", type=int, default=None)
    parser.add_argument("--samples", action="store_true")
    parser.add_argument("--table-only", type=Path, default=None, metavar="RESULTS_CSV",
                        help="tabulate an existing results.csv instead of running")
    args = parser.parse_args()
    if args.table_only is not None:
        print(table(args.table_only))
        return
    out = args.out or Path(tempfile.mkdtemp(prefix="jpeg-resilience-"))
    print(table(run(out, args.trials, args.samples)))


if __name__ == "__main__":
    main()
