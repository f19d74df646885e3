"""Measure JPEG 2000's resilience on a bare BSC and print the tables of docs/measured.md.

    python scripts/jpeg2000_resilience.py [--out DIR] [--trials N] [--samples] [--glymur]

**Layers, through the project's own link.** Runs a scenario (``noisylink run``): JPEG 2000 at
quality 35 dB with 1, 3 and 5 quality layers, no ECC, ideal headers, corrupted frames
delivered, BSC at BER 0, 1e-5, 1e-4, 1e-3, on the 18 McMaster pictures (128 x 128 crops), and
summarises ``results.csv`` per setting: mean payload bits and the cost over one layer at the
same quality (per image, then averaged), the clean PSNR, and per BER the corrupted
(undecodable) fraction and the mean PSNR over every trial (undecodable ones at the receiver's
mid-gray picture).

**Resilience switches, outside the link (``--glymur``).** Pillow's JPEG 2000 writer has no SOP,
EPH or code-block mode switches, so the codec has no setting for them. With ``glymur``
importable (and able to load an OpenJPEG library: a ``glymurrc`` naming one, e.g. the copy
Pillow ships), the same pictures are written through glymur with and without the switches
(first checking that glymur without them writes the codec's own file byte for byte), put
through the same BSC (each bit flipped independently, as the link with no ECC, ideal headers
and delivered frames does) and decoded by the codec's own decoder. The project does not depend
on glymur: this part is a measurement, not a feature.

``--samples`` uses the scikit-image sample pictures instead of the McMaster folder (for a
machine without the shared data); ``--trials`` overrides the trial count.
"""

from __future__ import annotations

import argparse
import csv
import json
import tempfile
from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np
from scenario_runs import SAMPLES, run_scenario

QUALITY = 35.0
BERS = [0.0, 1.0e-5, 1.0e-4, 1.0e-3]
IMAGES = {"source": "folder", "path": "../shared/data/eval/mcmaster", "resize": 128,
          "size": 128, "color": "rgb"}
SCENARIO: dict[str, Any] = {
    "name": "jpeg2000-resilience",
    "seed": 15,
    "images": IMAGES,
    "codec": {"name": "jpeg2000", "quality": QUALITY, "layers": [1, 3, 5]},
    "frames": {"payload_bytes": 1024, "header": "ideal", "on_crc_fail": "deliver"},
    "ecc": {"name": "none"},
    "channel": {"name": "bsc", "ber": BERS},
    "trials": 100,
    "device": "cpu",
}
# glymur's code-block mode switch bits (its ``modesw``): RESTART 4, ERTERM 16, SEGMARK 32
MODES = 4 | 16 | 32
SWITCHES: dict[str, dict[str, Any]] = {
    "none (glymur)": {},
    "SOP": {"sop": True},
    "EPH": {"eph": True},
    "SOP + EPH": {"sop": True, "eph": True},
    "RESTART + ERTERM + SEGMARK": {"modesw": MODES},
    "SOP + EPH + modes": {"sop": True, "eph": True, "modesw": MODES},
}


def run(out: Path, trials: int | None, samples: bool) -> Path:
    """Write the effective scenario into ``out`` and run it there; the results file."""
    return run_scenario(SCENARIO, out, trials, samples)


def _name(ber: float) -> str:
    return f"{ber:.0e}".replace("e-0", "e-")


def _header(first: str) -> list[str]:
    noisy = [_name(ber) for ber in BERS if ber > 0]
    head = [first, "bits (mean)", "cost", "PSNR clean"]
    head += [f"corrupted @{name}" for name in noisy] + [f"PSNR @{name}" for name in noisy]
    return ["| " + " | ".join(head) + " |", "|" + " --- |" * len(head)]


def table(results: Path) -> str:
    """The layers table from a scenario's ``results.csv``."""
    rows = list(csv.DictReader(results.open()))
    settings: dict[str, list[dict[str, str]]] = defaultdict(list)
    for row in rows:
        settings[row["codec_params"]].append(row)
    bits = {key: {row["image"]: int(row["source_bits"]) for row in group}
            for key, group in settings.items()}
    one = next(key for key in settings if json.loads(key).get("layers", 1) == 1)
    lines = _header("layers")
    for key, group in settings.items():
        per_image = bits[key]
        cost = sum(per_image[image] / bits[one][image] for image in per_image) / len(per_image)
        cells = [str(json.loads(key).get("layers", 1)),
                 f"{sum(per_image.values()) / len(per_image):.0f}", f"{100 * (cost - 1):+.1f} %"]
        by_ber = {ber: [row for row in group if float(row["channel_value"]) == ber]
                  for ber in BERS}
        cells.append(f"{_mean(by_ber[0.0], 'psnr'):.2f}")
        noisy = [ber for ber in BERS if ber > 0]
        cells += [f"{100 * _share(by_ber[ber], 'decoded', 'false'):.1f} %" for ber in noisy]
        cells += [f"{_mean(by_ber[ber], 'psnr'):.2f}" for ber in noisy]
        lines.append("| " + " | ".join(cells) + " |")
    n_trials = len({row["trial"] for row in rows})
    lines += ["", f"{len(bits[one])} images x {n_trials} trials per cell"]
    return "\n".join(lines)


def _mean(rows: list[dict[str, str]], column: str) -> float:
    return sum(float(row[column]) for row in rows) / len(rows)


def _share(rows: list[dict[str, str]], column: str, value: str) -> float:
    return sum(row[column] == value for row in rows) / len(rows)


def switches_table(trials: int, samples: bool, seed: int = 15) -> str:
    """SOP, EPH and the mode switches written through glymur, over a simulated BSC."""
    import glymur  # type: ignore[import-not-found]  # optional: a measurement, not a dependency

    from noisylink.codecs import CODECS
    from noisylink.errors import DecodeError
    from noisylink.images import load_images
    from noisylink.metrics import psnr
    from noisylink.scenarios.schema import ImagesSpec

    spec = ImagesSpec.model_validate(SAMPLES if samples else IMAGES)
    pictures = [image.pixels for image in load_images(spec)]
    codec = CODECS.build(CODECS.config({"name": "jpeg2000", "quality": QUALITY}))
    reference = [codec.encode(image) for image in pictures]
    rng = np.random.default_rng(seed)
    lines = _header("switches")
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "picture.j2k"

        def write(image: np.ndarray, options: dict[str, Any]) -> bytes:
            path.unlink(missing_ok=True)
            glymur.Jp2k(str(path), data=image, psnr=[QUALITY], irreversible=True, **options)
            return path.read_bytes()

        files = {name: [write(image, options) for image in pictures]
                 for name, options in SWITCHES.items()}
    same = all(mine == ref.payload for mine, ref in zip(files["none (glymur)"], reference,
                                                       strict=True))
    for name, payloads in files.items():
        cost = np.mean([len(p) / len(r.payload) for p, r in zip(payloads, reference, strict=True)])
        mean_bits = 8 * np.mean([len(p) for p in payloads])
        cells = [name, f"{mean_bits:.0f}", f"{100 * (cost - 1):+.1f} %"]
        undecodable: dict[float, float] = {}
        mean_psnr: dict[float, float] = {}
        for ber in BERS:
            scores, failed = [], 0
            for _ in range(trials if ber > 0 else 1):
                for payload, ref, image in zip(payloads, reference, pictures, strict=True):
                    bits = np.unpackbits(np.frombuffer(payload, dtype=np.uint8))
                    noisy = np.packbits(bits ^ (rng.random(bits.size) < ber)).tobytes()
                    try:
                        decoded = codec.decode(noisy, 8 * len(noisy), ref.side_info)
                    except DecodeError:
                        failed += 1
                        decoded = np.full_like(image, 128)
                    scores.append(psnr(image, decoded))
            undecodable[ber], mean_psnr[ber] = failed / len(scores), float(np.mean(scores))
        cells.append(f"{mean_psnr[0.0]:.2f}")
        cells += [f"{100 * undecodable[ber]:.1f} %" for ber in BERS if ber > 0]
        cells += [f"{mean_psnr[ber]:.2f}" for ber in BERS if ber > 0]
        lines.append("| " + " | ".join(cells) + " |")
    lines += ["", f"{len(pictures)} images x {trials} trials per cell; glymur without switches "
              f"writes the codec's own file: {'yes' if same else 'NO'}"]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument("--trials", type=int, default=None)
    parser.add_argument("--samples", action="store_true")
    parser.add_argument("--glymur", action="store_true",
                        help="also measure SOP/EPH/mode switches written through glymur")
    parser.add_argument("--table-only", type=Path, default=None, metavar="RESULTS_CSV",
                        help="tabulate an existing results.csv instead of running")
    args = parser.parse_args()
    if args.table_only is not None:
        print(table(args.table_only))
    else:
        out = args.out or Path(tempfile.mkdtemp(prefix="jpeg2000-resilience-"))
        print(table(run(out, args.trials, args.samples)))
    if args.glymur:
        print()
        print(switches_table(args.trials or SCENARIO["trials"], args.samples))


if __name__ == "__main__":
    main()
