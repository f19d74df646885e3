"""The model weights that ship inside the package: one entry per model, by name.

``model: bundled`` (the diffusion codecs' prior) and ``weights: bundled`` (the NECST and IABF
models) resolve here: a codec asks ``bundled_weights`` for its entry by name and gets the folder
that holds the files, their layout, the ``noisylink train-*`` command that made them (its
options as recorded beside the weights, in ``recipe.json`` or ``config.json``, and in
docs/measured.md) and what the model is. An entry says where the files are, nothing more:
loading them, every file checked first, stays with the codec, through ``noisylink.safeload``.

Formats: ``safetensors`` is one ``model.safetensors`` with its ``config.json``; ``diffusers`` is
a diffusers folder (``unet/`` and ``scheduler/``). Importing this module is cheap (no torch).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from noisylink.errors import NoisylinkError

PACKAGE = Path(__file__).parent

WeightsFormat = Literal["safetensors", "diffusers"]


@dataclass(frozen=True)
class BundledWeights:
    """One bundled model: its folder inside the package, its file layout, the command that
    made it and what it is."""

    folder: Path
    format: WeightsFormat
    made_by: str
    description: str


def _jscc(method: Literal["necst", "iabf"], eps: float, epochs: int) -> BundledWeights:
    """A NECST or IABF model of the recipe in docs/codecs.md, trained at ``eps``."""
    name = f"{method}-eps{eps:g}"
    what = {
        "necst": "NECST (random bit flips)",
        "iabf": "IABF (random and adversarial bit flips, infomax term)",
    }[method]
    return BundledWeights(
        folder=PACKAGE / "codecs" / "jscc" / "weights" / name,
        format="safetensors",
        made_by=(
            f"noisylink train-jscc --method {method} --eps {eps:g} --epochs {epochs} "
            "--patience 20 --estimator rloo --info-weight 0.001 --adversarial regularize "
            "--adversarial-weight 0.1 --seed 0 --threads 1 "
            f"--data ../shared/data/mnist/mnist.npz --out noisylink/codecs/jscc/weights/{name}"
        ),
        description=(
            f"{what} trained at ε = {eps:g}: MLPs from a 28x28 gray digit to 100 bits and back, on "
            "MNIST; the best-validation epoch of the 55 the time budget allowed (fp16)"
        ),
    )


def _hyperprior(quality: int, lmbda: float, steps: int, lr: float, minutes: int,
                steps_done: int, init: int | None = None) -> BundledWeights:
    """Rate point ``quality`` of the hyperprior codec, as docs/codecs.md and measured.md say."""
    weights = "noisylink/codecs/learned/weights"  # relative to the repository, as run there
    name = f"hyperprior-q{quality}"
    start = f"--init {weights}/hyperprior-q{init} " if init else ""
    return BundledWeights(
        folder=PACKAGE.parent / weights / name,
        format="safetensors",
        made_by=(
            "noisylink train-learned --data ../shared/data/bsds500/train "
            f"--data ../shared/data/bsds500/val --lambda {lmbda:g} --steps {steps} --crop 128 "
            f"--batch 8 --N 64 --M 96 --lr {lr:g} --lr-drop-at 0.8 {start}--seed 0 "
            f"--max-minutes {minutes} --threads 1 --out {weights}/{name}"
        ),
        description=(
            f"the hyperprior codec's rate point {quality}: mean-scale hyperprior (N = 64, M = 96) "
            f"trained at λ = {lmbda:g} on 128² crops of the BSDS500 train and val images"
            + (f", starting from rate point {init}" if init else "")
            + f"; {steps_done} of {steps} steps in the {minutes}-minute budget (fp16)"
        ),
    )


BUNDLED: dict[str, BundledWeights] = {
    "bsds-ddpm": BundledWeights(
        folder=PACKAGE / "codecs" / "diffusion" / "weights" / "bsds-ddpm",
        format="diffusers",
        made_by=(
            "noisylink train-prior --data ../shared/data/bsds500/train "
            "--data ../shared/data/bsds500/val --steps 20000 --crop 64 --batch 16 "
            "--max-minutes 95 --threads 2 --out noisylink/codecs/diffusion/weights/bsds-ddpm"
        ),
        description=(
            "the diffusion codecs' prior: a 4.3M-parameter pixel-space DDPM (UNet2DModel, "
            "ε-prediction, 1000 linear steps) on crops of the BSDS500 train and val images; "
            "the 95-minute budget stopped it after 6542 of 20000 steps (fp16)"
        ),
    ),
    **{
        f"{method}-eps{eps:g}": _jscc(method, eps, epochs)
        for method, eps, epochs in (
            ("necst", 0.1, 200), ("necst", 0.2, 200), ("necst", 0.3, 55), ("necst", 0.4, 55),
            ("iabf", 0.1, 55), ("iabf", 0.2, 55), ("iabf", 0.3, 55), ("iabf", 0.4, 55),
        )
    },
    # Rate points 2 and 3 trained from scratch (44 minutes, then resumed for 5 and 7);
    # 1 and 4 start from them at a lower learning rate (docs/measured.md, the BD-rate section).
    "hyperprior-q1": _hyperprior(1, 0.0018, 1800, 1e-4, 17, 1556, init=2),
    "hyperprior-q2": _hyperprior(2, 0.0035, 5000, 5e-4, 49, 4641),
    "hyperprior-q3": _hyperprior(3, 0.0067, 5000, 5e-4, 51, 4604),
    "hyperprior-q4": _hyperprior(4, 0.01, 1800, 1e-4, 17, 1536, init=3),
}
"""Every model in the package, by name (a test checks that each weights folder is here)."""


def bundled_weights(name: str) -> BundledWeights:
    """The bundled model ``name``; a one-line error naming the bundled ones when there is none."""
    try:
        return BUNDLED[name]
    except KeyError:
        raise NoisylinkError(
            f"no bundled weights named {name!r}; the package holds {', '.join(BUNDLED)}"
        ) from None
