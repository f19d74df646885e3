"""The model commands: train and evaluate the diffusion prior (``train-prior``,
``eval-prior``), the NECST/IABF codes (``train-jscc``, ``eval-jscc``) and the hyperprior
(``train-learned``), and write the built-in digits (``export-digits``)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, cast

import typer
from rich.table import Table

from noisylink.cli.common import console, fail
from noisylink.errors import NoisylinkError

app = typer.Typer()


@app.command("train-prior")
def train_prior(
    data: Annotated[
        list[Path], typer.Option(help="Folder of training images (repeat for several).")
    ],
    out: Annotated[Path, typer.Option(help="Folder to write the diffusers-format prior to.")],
    work_dir: Annotated[
        Path, typer.Option(help="Checkpoints; a run resumes from here.")
    ] = Path("noisylink-out/train-prior"),
    steps: Annotated[int, typer.Option(help="Optimizer steps in all.")] = 20_000,
    crop: Annotated[int, typer.Option(help="Side of the random training crops.")] = 64,
    batch: Annotated[int, typer.Option(help="Crops per optimizer step.")] = 16,
    max_minutes: Annotated[
        float | None, typer.Option(help="Stop (and export) after this long.")
    ] = None,
    threads: Annotated[int | None, typer.Option(help="CPU threads for torch.")] = None,
) -> None:
    """Train the pixel-space diffusion prior the diffusion codecs use (ε-prediction DDPM)."""
    from noisylink.codecs.diffusion.training import PriorRecipe
    from noisylink.codecs.diffusion.training import train_prior as run_training
    from noisylink.outdir import check_out_dir

    try:
        recipe = PriorRecipe(steps=steps, crop=crop, batch=batch)
        check_out_dir(out, "prior folder (--out)")
        check_out_dir(work_dir, "work folder (--work-dir)")
        run_training(recipe, data, work_dir, out, max_minutes=max_minutes, threads=threads,
                     log=lambda line: typer.echo(line, err=True))
    except NoisylinkError as exc:
        raise fail(str(exc)) from None


@app.command("train-learned")
def train_learned(
    data: Annotated[
        list[Path], typer.Option(help="Folder of training images (repeat for several).")
    ],
    lmbda: Annotated[float, typer.Option("--lambda", help="λ: weight of 255²·MSE against bpp.")],
    out: Annotated[Path, typer.Option(help="Model folder; a run resumes from its checkpoint.")],
    steps: Annotated[int, typer.Option(help="Optimizer steps in all.")] = 100_000,
    crop: Annotated[int, typer.Option(help="Side of the random crops (multiple of 64).")] = 128,
    batch: Annotated[int, typer.Option(help="Crops per optimizer step.")] = 8,
    channels: Annotated[int, typer.Option("--N", help="Channels of the transforms.")] = 128,
    latent: Annotated[int, typer.Option("--M", help="Channels of the latent.")] = 192,
    lr: Annotated[float, typer.Option(help="Adam learning rate.")] = 1e-4,
    lr_drop_at: Annotated[
        float, typer.Option(help="Fraction of the steps after which the rate drops tenfold.")
    ] = 1.0,
    init: Annotated[
        Path | None, typer.Option(help="Start from this trained model folder (same N, M).")
    ] = None,
    seed: Annotated[int, typer.Option(help="Seed for initialisation and crops.")] = 0,
    max_minutes: Annotated[
        float | None, typer.Option(help="Stop (and export) after this long.")
    ] = None,
    threads: Annotated[int | None, typer.Option(help="CPU threads for torch.")] = None,
) -> None:
    """Train one rate point of the hyperprior codec (MSE + λ·rate), resumable."""
    from noisylink.codecs.learned.training import LearnedRecipe, train_hyperprior
    from noisylink.outdir import prepare_out_dir

    try:
        recipe = LearnedRecipe(lmbda=lmbda, N=channels, M=latent, crop=crop, batch=batch,
                               steps=steps, lr=lr, lr_drop_at=lr_drop_at,
                               init=None if init is None else str(init), seed=seed)
        target = prepare_out_dir(out, "model folder (--out)")
        if threads is not None:
            import torch

            torch.set_num_threads(threads)
        step = train_hyperprior(recipe, data, target, max_minutes=max_minutes,
                                log=lambda line: typer.echo(line, err=True))
    except NoisylinkError as exc:
        raise fail(str(exc)) from None
    typer.echo(f"trained to step {step}; model in {out}")


@app.command("eval-prior")
def eval_prior(
    data: Annotated[Path, typer.Option(help="Folder of evaluation images.")],
    model: Annotated[str, typer.Option(help="'bundled', a local folder or a hub id.")] = "bundled",
    timesteps: Annotated[str, typer.Option(help="Comma-separated timesteps.")] = "100,300,500,700",
    crop: Annotated[int, typer.Option(help="Center crop side (a multiple of 8).")] = 256,
) -> None:
    """Denoising quality of a pixel prior: mean PSNR of its one-step x̂0 at each timestep."""
    from noisylink.codecs.diffusion.backbone import load_backbone
    from noisylink.codecs.diffusion.training import load_eval_images, x0_psnr

    try:
        steps = [int(t) for t in timesteps.split(",")]
        backbone = load_backbone(model)
        pictures = load_eval_images(data, crop)
        result = x0_psnr(backbone, pictures, steps)
    except ValueError as exc:
        raise fail(f"--timesteps: {exc}") from None
    except NoisylinkError as exc:
        raise fail(str(exc)) from None
    typer.echo(f"x0 PSNR of {model} on {len(pictures)} images from {data} ({crop}x{crop} crops)")
    for t, value in result.items():
        typer.echo(f"t={t}: {value:.2f} dB")


@app.command("train-jscc")
def train_jscc(
    method: Annotated[str, typer.Option(help="necst or iabf.")],
    eps: Annotated[float, typer.Option(help="BSC flip probability to train for (0 < ε < 0.5).")],
    data: Annotated[Path, typer.Option(help="MNIST in keras layout (mnist.npz).")] = Path(
        "../shared/data/mnist/mnist.npz"
    ),
    out: Annotated[
        Path | None, typer.Option(help="Model folder (default noisylink-out/jscc/METHOD-epsE).")
    ] = None,
    epochs: Annotated[int, typer.Option(help="Most epochs over the 50k training digits.")] = 200,
    patience: Annotated[int, typer.Option(help="Stop after this many epochs without a better "
                                                "validation L2.")] = 20,
    estimator: Annotated[str, typer.Option(help="rloo or vimco.")] = "rloo",
    info_weight: Annotated[float, typer.Option(help="IABF's λ for the infomax term.")] = 0.001,
    adversarial: Annotated[
        str, typer.Option(help="IABF: 'regularize' (NECST loss + adversarial term), 'replace' "
                               "(top-gain flips only) or 'sampled' (flips drawn ∝ softmax(g²)).")
    ] = "regularize",
    adversarial_weight: Annotated[
        float, typer.Option(help="IABF with regularize: weight of the adversarial term "
                               "(0: the infomax term alone).")
    ] = 0.1,
    seed: Annotated[int, typer.Option(help="Seed for initialisation and sampling.")] = 0,
    max_minutes: Annotated[
        float | None, typer.Option(help="Stop after the epoch that passes this time.")
    ] = None,
    threads: Annotated[int | None, typer.Option(help="CPU threads for torch.")] = None,
) -> None:
    """Train NECST or IABF on MNIST (100 bits); keeps the model with the best validation L2."""
    from noisylink.codecs.jscc.training import Adversarial, Estimator, Method, Recipe, load_mnist
    from noisylink.codecs.jscc.training import train_jscc as run_training
    from noisylink.codecs.jscc.weights import model_dir
    from noisylink.outdir import prepare_out_dir

    try:
        # Recipe checks the choices itself (one line naming the option); cast only for typing.
        recipe = Recipe(method=cast(Method, method), eps=eps, epochs=epochs, patience=patience,
                        estimator=cast(Estimator, estimator), info_weight=info_weight, seed=seed,
                        adversarial=cast(Adversarial, adversarial),
                        adversarial_weight=adversarial_weight)
        split = load_mnist(data)
        target = prepare_out_dir(out or model_dir("noisylink-out/jscc", method, eps),
                                 "model folder (--out)")
        if threads is not None:
            import torch

            torch.set_num_threads(threads)
        report = run_training(recipe, split, target, max_minutes=max_minutes,
                              log=lambda line: typer.echo(line, err=True))
    except NoisylinkError as exc:
        raise fail(str(exc)) from None
    typer.echo(f"best validation L2 {report.best_validation_l2:.3f} at epoch {report.best_epoch} "
               f"of {report.epochs_run}; {report.seconds / 60:.1f} min")


@app.command("eval-jscc")
def eval_jscc(
    data: Annotated[Path, typer.Option(help="MNIST in keras layout (mnist.npz).")] = Path(
        "../shared/data/mnist/mnist.npz"
    ),
    weights: Annotated[
        str, typer.Option(help="'bundled' or a folder holding METHOD-epsE model folders.")
    ] = "bundled",
    seed: Annotated[int, typer.Option(help="Seed of the bit sampling and the channel.")] = 0,
) -> None:
    """Score the NECST and IABF models on the MNIST test set (the IABF paper's Table 1)."""
    from noisylink.codecs.jscc.evaluation import TOLERANCE, evaluate_models, iabf_at_or_below_necst
    from noisylink.codecs.jscc.training import load_mnist

    try:
        scores = evaluate_models(weights, load_mnist(data).test, seed=seed)
    except NoisylinkError as exc:
        raise fail(str(exc)) from None
    typer.echo("method,eps,l2")
    for score in scores:
        typer.echo(f"{score.method},{score.eps:g},{score.l2:.3f}")
    table = Table(title="MNIST test set, 100 bits: mean per-image squared error (lower is better)")
    for header in ("method", "eps", "ours", "paper", "gap", f"within {TOLERANCE:.0%}",
                   "kept epoch", "training min"):
        table.add_column(header, justify="right")
    for score in scores:
        gap = score.relative_gap
        table.add_row(
            score.method, f"{score.eps:g}", f"{score.l2:.3f}",
            "" if score.paper is None else f"{score.paper:.3f}",
            "" if gap is None else f"{gap:+.1%}",
            "" if gap is None else ("yes" if abs(gap) <= TOLERANCE else "no"),
            "" if score.epoch is None else str(score.epoch),
            "" if score.train_minutes is None else f"{score.train_minutes:.1f}",
        )
    console.print(table)
    for eps, ok in iabf_at_or_below_necst(scores).items():
        console.print(f"eps={eps:g}: IABF {'at or below' if ok else 'above'} NECST",
                      highlight=False)


@app.command("export-digits")
def export_digits(
    data: Annotated[Path, typer.Option(help="MNIST in keras layout (mnist.npz).")] = Path(
        "../shared/data/mnist/mnist.npz"
    ),
    count: Annotated[int, typer.Option(help="How many test digits, from the first.")] = 300,
    out: Annotated[Path | None, typer.Option(help="npz to write (default: the package's).")] = None,
) -> None:
    """Write the first COUNT MNIST test digits as the built-in ``digits`` image source."""
    import numpy as np

    from noisylink.images import DIGITS_FILE
    from noisylink.outdir import prepare_out_file

    target = out or DIGITS_FILE
    try:
        with np.load(data) as mnist:
            digits, labels = mnist["x_test"][:count], mnist["y_test"][:count]
    except (OSError, ValueError, KeyError) as exc:
        raise fail(f"{data}: cannot read MNIST ({exc})") from None
    try:
        prepare_out_file(target, "digits file (--out)")
        np.savez_compressed(target, digits=digits.astype(np.uint8), labels=labels.astype(np.uint8))
    except NoisylinkError as exc:
        raise fail(str(exc)) from None
    except OSError as exc:
        raise fail(f"{target}: cannot write ({exc.strerror or exc})") from None
    typer.echo(f"{len(digits)} digits -> {target}")
