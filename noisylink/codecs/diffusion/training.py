"""Training the bundled pixel-space prior: a small ε-prediction DDPM on natural-image crops.

The recipe is data (``PriorRecipe``); ``train_prior`` runs it, checkpointing so a killed run
resumes where it stopped, and exports the EMA weights in diffusers format (fp16 safetensors).

The checkpoint (``WORK_DIR/checkpoint.pt``: the recipe, the model, EMA and optimizer state
dicts, the RNG states and the step) is written and read by ``noisylink.training_state``: plain
data and tensors only, checked before use.
"""

from __future__ import annotations

import copy
import json
import math
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import torch
from pydantic import Field

from noisylink.errors import NoisylinkError
from noisylink.images import read_image_file
from noisylink.registry import ConfigModel
from noisylink.training_state import resume_training_state, save_training_state

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".tif", ".tiff", ".bmp", ".webp"}


class PriorRecipe(ConfigModel):
    """Everything that decides the trained prior (with the data folders and the seed)."""

    crop: int = Field(64, ge=16, description="side of the random training crops")
    batch: int = Field(16, ge=1)
    steps: int = Field(20_000, ge=1, description="optimizer steps in all")
    lr: float = Field(3e-4, gt=0)
    warmup: int = Field(500, ge=0)
    ema_decay: float = Field(0.999, gt=0, lt=1)
    block_out_channels: tuple[int, ...] = (32, 64, 128, 128)
    layers_per_block: int = 1
    attention_levels: tuple[int, ...] = Field((3,), description="levels with self-attention")
    train_timesteps: int = 1000
    beta_schedule: str = "linear"
    seed: int = 0


def unet_config(recipe: PriorRecipe) -> dict:
    """The ``UNet2DModel`` configuration the recipe describes."""
    levels = range(len(recipe.block_out_channels))
    down = ["AttnDownBlock2D" if i in recipe.attention_levels else "DownBlock2D" for i in levels]
    up = ["AttnUpBlock2D" if i in recipe.attention_levels else "UpBlock2D" for i in levels][::-1]
    return dict(
        sample_size=recipe.crop,
        in_channels=3,
        out_channels=3,
        block_out_channels=tuple(recipe.block_out_channels),
        layers_per_block=recipe.layers_per_block,
        down_block_types=tuple(down),
        up_block_types=tuple(up),
        norm_num_groups=min(32, recipe.block_out_channels[0]),
    )


def load_training_images(folders: Sequence[Path], min_side: int) -> list[np.ndarray]:
    """All RGB images (uint8 HWC) in the folders, skipping any smaller than a crop."""
    images: list[np.ndarray] = []
    for folder in folders:
        if not folder.is_dir():
            raise NoisylinkError(f"training data folder not found: {folder}")
        for path in sorted(folder.iterdir()):
            if path.suffix.lower() not in IMAGE_SUFFIXES:
                continue
            array = read_image_file(path)
            if array.ndim == 2:
                array = np.repeat(array[:, :, None], 3, axis=2)
            if min(array.shape[:2]) >= min_side:
                images.append(array)
    if not images:
        raise NoisylinkError(f"no training images of at least {min_side} px in {list(folders)}")
    return images


def random_crops(
    images: Sequence[np.ndarray], batch: int, crop: int, rng: np.random.Generator
) -> torch.Tensor:
    """A batch of random crops with random horizontal flips, as floats in [-1, 1], NCHW."""
    out = np.empty((batch, crop, crop, 3), dtype=np.uint8)
    for b in range(batch):
        image = images[rng.integers(len(images))]
        top = rng.integers(image.shape[0] - crop + 1)
        left = rng.integers(image.shape[1] - crop + 1)
        patch = image[top : top + crop, left : left + crop]
        out[b] = patch[:, ::-1] if rng.random() < 0.5 else patch
    return torch.from_numpy(out).permute(0, 3, 1, 2).float().div(127.5).sub(1.0)


def export_prior(unet: torch.nn.Module, scheduler, folder: Path) -> None:
    """Write weights (fp16 safetensors) and scheduler in the diffusers folder layout."""
    from diffusers.utils import logging as diffusers_logging

    diffusers_logging.set_verbosity_error()  # the fp16 cast warning is about loading, not saving
    half = copy.deepcopy(unet).to(torch.float16)
    half.save_pretrained(folder / "unet", safe_serialization=True)
    scheduler.save_pretrained(folder / "scheduler")


def train_prior(
    recipe: PriorRecipe,
    data: Sequence[Path],
    work_dir: Path,
    export_to: Path,
    max_minutes: float | None = None,
    threads: int | None = None,
    log: Callable[[str], None] = print,
) -> int:
    """Train (or resume) the prior; export the EMA weights; return the step reached."""
    from diffusers import DDPMScheduler, UNet2DModel

    if threads:
        torch.set_num_threads(threads)
    work_dir.mkdir(parents=True, exist_ok=True)
    checkpoint = work_dir / "checkpoint.pt"
    torch.manual_seed(recipe.seed)
    unet = UNet2DModel(**unet_config(recipe))
    ema = copy.deepcopy(unet).requires_grad_(False)
    scheduler = DDPMScheduler(
        num_train_timesteps=recipe.train_timesteps,
        beta_schedule=recipe.beta_schedule,
        prediction_type="epsilon",
        clip_sample=True,
    )
    optimizer = torch.optim.AdamW(unet.parameters(), lr=recipe.lr, weight_decay=0.0)
    rng = np.random.default_rng(recipe.seed)
    parts = {"unet": unet, "ema": ema, "optimizer": optimizer}
    step = resume_training_state(checkpoint, recipe.model_dump(mode="json"), parts, rng,
                                 "use another --work-dir")
    if step:
        log(f"resumed at step {step}")
    images = load_training_images(data, recipe.crop)
    log(f"{len(images)} training images, {sum(p.numel() for p in unet.parameters())} parameters")
    alphas = scheduler.alphas_cumprod

    def save() -> None:
        save_training_state(checkpoint, recipe.model_dump(mode="json"), parts, rng, step)
        export_prior(ema, scheduler, export_to)
        (export_to / "recipe.json").write_text(
            json.dumps({**recipe.model_dump(mode="json"), "steps_done": step}, indent=2) + "\n"
        )

    started = time.perf_counter()
    running = None
    unet.train()
    while step < recipe.steps:
        x0 = random_crops(images, recipe.batch, recipe.crop, rng)
        noise = torch.randn_like(x0)
        t = torch.randint(0, recipe.train_timesteps, (recipe.batch,))
        a = alphas[t].view(-1, 1, 1, 1)
        xt = a.sqrt() * x0 + (1 - a).sqrt() * noise
        loss = torch.nn.functional.mse_loss(unet(xt, t).sample, noise)
        for group in optimizer.param_groups:
            group["lr"] = recipe.lr * min(1.0, (step + 1) / max(1, recipe.warmup))
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(unet.parameters(), 1.0)
        optimizer.step()
        step += 1
        decay = min(recipe.ema_decay, (1 + step) / (10 + step))
        with torch.no_grad():
            for e, p in zip(ema.parameters(), unet.parameters(), strict=True):
                e.lerp_(p, 1 - decay)
        running = loss.item() if running is None else 0.98 * running + 0.02 * loss.item()
        elapsed = time.perf_counter() - started
        if step % 100 == 0:
            log(f"step {step} loss {running:.4f} {elapsed / 60:.1f} min")
        if step % 500 == 0:
            save()
        if max_minutes is not None and elapsed > 60 * max_minutes:
            log(f"time budget of {max_minutes} min reached at step {step}")
            break
    save()
    log(f"exported EMA weights at step {step} to {export_to}")
    return step


def load_eval_images(folder: Path, crop: int) -> list[np.ndarray]:
    """The folder's images as RGB, center-cropped to ``crop`` (smaller ones are skipped)."""
    images = []
    for image in load_training_images([folder], crop):
        top = (image.shape[0] - crop) // 2
        left = (image.shape[1] - crop) // 2
        images.append(image[top : top + crop, left : left + crop])
    return images


def x0_psnr(
    backbone, images: Sequence[np.ndarray], timesteps: Sequence[int], seed: int = 0
) -> dict[int, float]:
    """Mean PSNR (dB) of a pixel backbone's one-step x̂0 estimate at each timestep."""
    from noisylink.codecs.diffusion.sampler import predict_x0

    generator = torch.Generator().manual_seed(seed)
    alphas = backbone.alphas_cumprod
    result = {}
    for t in timesteps:
        if not 0 <= t < backbone.train_timesteps:
            raise NoisylinkError(f"timestep {t} is outside 0..{backbone.train_timesteps - 1}")
        values = []
        for image in images:
            pixels = torch.from_numpy(np.array(image)).permute(2, 0, 1)[None]
            x0 = pixels.float().div(127.5).sub(1.0)
            noise = torch.randn(x0.shape, generator=generator)
            alpha = float(alphas[t])
            xt = alpha**0.5 * x0 + (1 - alpha) ** 0.5 * noise
            x0_hat, _ = predict_x0(backbone, xt.to(backbone.device), t)
            mse = ((x0_hat.cpu() - x0) / 2).pow(2).mean().item()
            values.append(10 * math.log10(1 / max(mse, 1e-10)))
        result[t] = float(np.mean(values))
    return result
