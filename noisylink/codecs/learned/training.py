"""Training one rate point of the hyperprior: MSE + λ·rate on random natural-image crops.

The loss is CompressAI's example trainer's: λ·255²·MSE + bits per pixel, the rate being
−log₂ of the likelihoods of the noisy latent and hyper-latent. Adam at ``lr``; crops with
random horizontal flips from the data folders (``noisylink.codecs.diffusion.training``'s
loader). ``train_hyperprior`` checkpoints to ``OUT/checkpoint.pt``
(``noisylink.training_state``) so a stopped run resumes where it was, and exports
``OUT/model.safetensors`` (fp16) and ``OUT/config.json`` (shape, recipe, steps, the latest
running bpp and PSNR of the training crops) at each checkpoint.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import torch
from pydantic import Field

from noisylink.codecs.learned.model import HyperpriorModel, HyperpriorShape
from noisylink.errors import NoisylinkError
from noisylink.registry import ConfigModel
from noisylink.training_state import resume_training_state, save_training_state


class LearnedRecipe(ConfigModel):
    """Everything that decides one trained rate point (with the data folders)."""

    lmbda: float = Field(0.0067, gt=0, description="λ: weight of 255²·MSE against the bpp")
    N: int = Field(128, ge=8, le=1024)
    M: int = Field(192, ge=8, le=1024)
    crop: int = Field(128, ge=64, description="side of the random training crops (multiple of 64)")
    batch: int = Field(8, ge=1)
    steps: int = Field(100_000, ge=1, description="optimizer steps in all")
    lr: float = Field(1e-4, gt=0)
    lr_drop_at: float = Field(1.0, gt=0, le=1,
                              description="fraction of the steps after which lr is divided by 10")
    init: str | None = Field(None, description="model folder whose weights the run starts from "
                                               "(e.g. another rate point); fresh weights if None")
    seed: int = 0


def rate_distortion(model: HyperpriorModel, x: torch.Tensor, lmbda: float
                    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(loss, bpp, mse) of one batch ``[B, 3, H, W]`` in [0, 1] (training pass)."""
    out = model(x)
    pixels = x.shape[0] * x.shape[2] * x.shape[3]
    bits = -(torch.log2(out["y_likelihood"]).sum() + torch.log2(out["z_likelihood"]).sum())
    bpp = bits / pixels
    mse = torch.mean((out["x_hat"] - x) ** 2)
    return lmbda * 255.0**2 * mse + bpp, bpp, mse


def export_model(model: HyperpriorModel, folder: Path, facts: dict) -> None:
    """fp16 safetensors and the JSON description the codec reads."""
    from safetensors.torch import save_file

    folder.mkdir(parents=True, exist_ok=True)
    state = {key: value.detach().to(torch.float16).contiguous()
             for key, value in model.state_dict().items()}
    save_file(state, str(folder / "model.safetensors"))
    (folder / "config.json").write_text(
        json.dumps({"shape": model.shape.to_json(), **facts}, indent=2) + "\n")


def start_from(model: HyperpriorModel, folder: Path) -> None:
    """Copy the weights of the trained model in ``folder`` (same N and M) into ``model``."""
    from noisylink.codecs.learned.weights import load_model
    from noisylink.errors import LinkError

    try:
        trained = load_model(folder)
    except LinkError as exc:
        raise NoisylinkError(f"init: {exc}") from None
    if trained.shape != model.shape:
        raise NoisylinkError(f"init: {folder} has shape {trained.shape.to_json()}, the recipe "
                             f"asks for {model.shape.to_json()}")
    model.load_state_dict(trained.state_dict())


def train_hyperprior(
    recipe: LearnedRecipe,
    data: Sequence[Path],
    out: Path,
    max_minutes: float | None = None,
    log: Callable[[str], None] = print,
) -> int:
    """Train (or resume) one rate point into ``out``; return the step reached."""
    from noisylink.codecs.diffusion.training import load_training_images, random_crops

    if recipe.crop % 64:
        raise NoisylinkError(f"crop must be a multiple of 64, got {recipe.crop}")
    torch.manual_seed(recipe.seed)
    model = HyperpriorModel(HyperpriorShape(N=recipe.N, M=recipe.M))
    if recipe.init is not None:
        start_from(model, Path(recipe.init))
    optimizer = torch.optim.Adam(model.parameters(), lr=recipe.lr)
    rng = np.random.default_rng(recipe.seed)
    checkpoint = out / "checkpoint.pt"
    parts = {"model": model, "optimizer": optimizer}
    step = resume_training_state(checkpoint, recipe.model_dump(mode="json"), parts, rng,
                                 "use another --out")
    if step:
        log(f"resumed at step {step}")
    images = load_training_images(data, recipe.crop)
    log(f"{len(images)} training images, {sum(p.numel() for p in model.parameters())} parameters")
    history: list[dict[str, float]] = []

    def save() -> None:
        out.mkdir(parents=True, exist_ok=True)
        save_training_state(checkpoint, recipe.model_dump(mode="json"), parts, rng, step)
        export_model(model, out, {"recipe": recipe.model_dump(mode="json"), "steps_done": step,
                                  "recent": history[-1] if history else None})

    started = time.perf_counter()
    running: dict[str, float] = {}
    model.train()
    while step < recipe.steps:
        lr = recipe.lr if step < recipe.lr_drop_at * recipe.steps else recipe.lr / 10
        for group in optimizer.param_groups:
            group["lr"] = lr
        x = random_crops(images, recipe.batch, recipe.crop, rng).add(1.0).div(2.0)
        loss, bpp, mse = rate_distortion(model, x, recipe.lmbda)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        step += 1
        for name, value in (("loss", loss), ("bpp", bpp), ("mse", mse)):
            previous = running.get(name)
            current = float(value.detach())
            running[name] = current if previous is None else 0.98 * previous + 0.02 * current
        elapsed = time.perf_counter() - started
        if step % 100 == 0:
            psnr = 10 * math.log10(1 / max(running["mse"], 1e-12))
            history.append({"step": step, "bpp": running["bpp"], "psnr": psnr})
            log(f"step {step} loss {running['loss']:.4f} bpp {running['bpp']:.3f} "
                f"PSNR {psnr:.2f} dB {elapsed / 60:.1f} min")
        if step % 500 == 0:
            save()
        if max_minutes is not None and elapsed > 60 * max_minutes:
            log(f"time budget of {max_minutes} min reached at step {step}")
            break
    save()
    model.eval()
    return step
