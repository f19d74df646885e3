"""NECST against IABF over several training seeds: is IABF's gain bigger than seed noise?

``train`` trains every (method, ε, seed) of the grid with ``noisylink train-jscc`` (one CPU
thread each, ``--workers`` at a time), under the same budget for both methods: the same
epochs, estimator, recipe and seeds. Models go to ``ROOT/seedS/METHOD-epsE``; a finished one
leaves ``done.txt`` there, so a stopped run picks up where it was (an unfinished model folder is
trained again from scratch). ``report`` scores every model on the 10k MNIST test digits (the
IABF paper's Table 1 metric; one channel draw shared by all models, seed 0) and prints, per ε,
each method's mean ± standard deviation over seeds, the paired IABF − NECST difference per
seed, Welch's t-test of the two means, and the paper's gap beside ours.

Run: python scripts/jscc_seed_study.py train --root runs/jscc-seeds --estimator vimco
         [--epochs 20] [--seeds 0,1,2] [--eps 0.1,0.2,0.3,0.4] [--workers 2]
     python scripts/jscc_seed_study.py report --root runs/jscc-seeds [--json out.json]
     python scripts/jscc_seed_study.py codes --root noisylink/codecs/jscc/weights
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from noisylink.codecs.jscc.evaluation import PAPER_L2
from noisylink.codecs.jscc.weights import METHODS, model_dir
from noisylink.errors import NoisylinkError

MNIST = Path("../shared/data/mnist/mnist.npz")


def grid(seeds: list[int], eps_values: list[float]) -> list[tuple[int, float, str]]:
    """Seed-major order, so the first seed's eight models finish first."""
    return [(seed, eps, method) for seed in seeds for eps in eps_values for method in METHODS]


def train_one(root: Path, seed: int, eps: float, method: str, args: argparse.Namespace) -> str:
    folder = model_dir(root / f"seed{seed}", method, eps)
    if (folder / "done.txt").exists():
        return f"{folder}: already trained"
    shutil.rmtree(folder, ignore_errors=True)
    command = [
        sys.executable, "-m", "noisylink", "train-jscc", "--method", method, "--eps", str(eps),
        "--epochs", str(args.epochs), "--patience", str(args.epochs), "--estimator",
        args.estimator, "--info-weight", str(args.info_weight), "--adversarial",
        args.adversarial, "--adversarial-weight", str(args.adversarial_weight), "--seed",
        str(seed), "--threads", "1", "--data", str(args.data), "--out", str(folder),
    ]
    log = root / "logs" / f"seed{seed}-{method}-eps{eps}.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("w") as stream:
        result = subprocess.run(command, stdout=subprocess.PIPE, stderr=stream, text=True)
    if result.returncode != 0:
        return f"{folder}: FAILED (exit {result.returncode}, see {log})"
    (folder / "done.txt").write_text(result.stdout)
    return f"{folder}: {result.stdout.strip()}"


def train(args: argparse.Namespace) -> int:
    root = Path(args.root)
    jobs = grid(args.seeds, args.eps)
    with ThreadPoolExecutor(max_workers=args.workers) as pool:
        futures = [pool.submit(train_one, root, seed, eps, method, args)
                   for seed, eps, method in jobs]
        lines = [future.result() for future in futures]
        for line in lines:
            print(line, flush=True)
    return 1 if any("FAILED" in line for line in lines) else 0


def welch_p(a: np.ndarray, b: np.ndarray) -> float:
    from scipy.stats import ttest_ind

    return float(ttest_ind(a, b, equal_var=False).pvalue)


def report(args: argparse.Namespace) -> int:
    from noisylink.codecs.jscc.training import l2_distortion, load_mnist
    from noisylink.codecs.jscc.weights import load_model

    root = Path(args.root)
    test = load_mnist(args.data).test
    scores: dict[tuple[str, float, int], float] = {}
    missing = []
    for seed, eps, method in grid(args.seeds, args.eps):
        folder = model_dir(root / f"seed{seed}", method, eps)
        if not (folder / "done.txt").exists():
            missing.append(str(folder))
            continue
        scores[(method, eps, seed)] = l2_distortion(load_model(folder), test, eps, seed=0)
    print("method,eps,seed,l2")
    for (method, eps, seed), l2 in sorted(scores.items()):
        print(f"{method},{eps},{seed},{l2:.3f}")
    print()
    print("| ε | NECST mean ± sd | IABF mean ± sd | IABF − NECST per seed | mean gap | Welch p "
          "| paper gap |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    summary = []
    for eps in args.eps:
        seeds = [s for s in args.seeds
                 if ("necst", eps, s) in scores and ("iabf", eps, s) in scores]
        if len(seeds) < 2:
            continue
        necst = np.array([scores[("necst", eps, s)] for s in seeds])
        iabf = np.array([scores[("iabf", eps, s)] for s in seeds])
        paired = iabf - necst
        gap = (iabf.mean() - necst.mean()) / necst.mean()
        paper = (PAPER_L2[("iabf", eps)] - PAPER_L2[("necst", eps)]) / PAPER_L2[("necst", eps)]
        p = welch_p(iabf, necst)
        print(f"| {eps} | {necst.mean():.3f} ± {necst.std(ddof=1):.3f} | "
              f"{iabf.mean():.3f} ± {iabf.std(ddof=1):.3f} | "
              f"{', '.join(f'{d:+.3f}' for d in paired)} | {100 * gap:+.2f} % | {p:.3f} | "
              f"{100 * paper:+.2f} % |")
        summary.append({"eps": eps, "seeds": seeds, "necst": necst.tolist(),
                        "iabf": iabf.tolist(), "gap": gap, "welch_p": p, "paper_gap": paper})
    if args.json:
        Path(args.json).write_text(json.dumps({"scores": [
            {"method": m, "eps": e, "seed": s, "l2": v} for (m, e, s), v in scores.items()
        ], "summary": summary}, indent=2) + "\n")
    if missing:
        print(f"missing {len(missing)} models: {', '.join(missing)}", file=sys.stderr)
        return 1
    return 0


def codes(args: argparse.Namespace) -> int:
    import torch

    from noisylink.codecs.jscc.model import sample_bsc
    from noisylink.codecs.jscc.training import binary_entropy, load_mnist
    from noisylink.codecs.jscc.weights import load_model

    pixels = torch.from_numpy(load_mnist(args.data).test)
    print("method,eps,h_y_given_x_nats,sum_h_yd_nats,l2_sampled,l2_likelier")
    for eps in args.eps:
        for method in METHODS:
            model = load_model(model_dir(Path(args.root), method, eps))
            generator = torch.Generator().manual_seed(0)
            with torch.no_grad():
                probability = torch.sigmoid(model.logits(pixels))
                l2 = {}
                for name, bits in (("sampled", torch.bernoulli(probability, generator=generator)),
                                   ("likelier", (probability > 0.5).float())):
                    received = sample_bsc(bits, eps, generator)
                    l2[name] = float(((model.decode(received) - pixels) ** 2).sum(-1).mean())
            print(f"{method},{eps},{float(binary_entropy(probability).sum(-1).mean()):.2f},"
                  f"{float(binary_entropy(probability.mean(0)).sum()):.2f},"
                  f"{l2['sampled']:.3f},{l2['likelier']:.3f}")
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("action", choices=["train", "report", "codes"])
    parser.add_argument("--root", required=True)
    parser.add_argument("--data", type=Path, default=MNIST)
    parser.add_argument("--seeds", type=lambda s: [int(v) for v in s.split(",")],
                        default=[0, 1, 2])
    parser.add_argument("--eps", type=lambda s: [float(v) for v in s.split(",")],
                        default=[0.1, 0.2, 0.3, 0.4])
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--estimator", default="vimco")
    parser.add_argument("--info-weight", type=float, default=0.001)
    parser.add_argument("--adversarial", default="regularize")
    parser.add_argument("--adversarial-weight", type=float, default=0.1)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--json")
    args = parser.parse_args()
    actions = {"train": train, "report": report, "codes": codes}
    try:
        return actions[args.action](args)
    except NoisylinkError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    raise SystemExit(main())
