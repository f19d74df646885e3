"""The prior's training recipe: it trains, lowers its loss, resumes, exports a loadable prior."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from noisylink.cli import app
from noisylink.codecs.diffusion.backbone import load_backbone
from noisylink.codecs.diffusion.training import (
    PriorRecipe,
    load_training_images,
    random_crops,
    train_prior,
    x0_psnr,
)
from noisylink.errors import NoisylinkError

TINY = dict(crop=16, batch=4, block_out_channels=(8, 16), attention_levels=(1,), warmup=1)


def write_images(folder: Path, count: int = 3, size: tuple[int, int] = (40, 30)) -> Path:
    """Smooth random pictures (a denoiser can learn them quickly)."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    for index in range(count):
        y, x = np.mgrid[0 : size[1], 0 : size[0]]
        phase = rng.uniform(0, 6, 3)
        pixels = np.stack([127 + 100 * np.sin(x / 7 + y / 9 + p) for p in phase], axis=-1)
        Image.fromarray(pixels.astype(np.uint8)).save(folder / f"{index}.png")
    (folder / "notes.txt").write_text("not an image")
    return folder


def test_crops_have_the_recipe_shape_and_range(tmp_path: Path) -> None:
    images = load_training_images([write_images(tmp_path / "data")], 16)
    assert len(images) == 3
    crops = random_crops(images, 5, 16, np.random.default_rng(1))
    assert crops.shape == (5, 3, 16, 16)
    assert crops.min() >= -1 and crops.max() <= 1


def test_small_images_and_missing_folders_are_clear_errors(tmp_path: Path) -> None:
    data = write_images(tmp_path / "data", size=(10, 10))
    with pytest.raises(NoisylinkError, match="no training images of at least 16 px"):
        load_training_images([data], 16)
    with pytest.raises(NoisylinkError, match="not found"):
        load_training_images([tmp_path / "nowhere"], 16)


@pytest.mark.slow
def test_training_lowers_the_loss_resumes_and_exports_a_loadable_prior(tmp_path: Path) -> None:
    data = write_images(tmp_path / "data")
    lines: list[str] = []
    recipe = PriorRecipe(steps=200, lr=2e-3, **TINY)
    work, out = tmp_path / "work", tmp_path / "prior"
    assert train_prior(recipe, [data], work, out, log=lines.append) == 200
    losses = [float(line.split()[3]) for line in lines if line.startswith("step ")]
    assert losses[-1] < 0.5 * losses[0]  # step 100 vs step 200, running means
    backbone = load_backbone(str(out))
    assert backbone.kind == "pixel" and backbone.prediction_type == "epsilon"
    assert backbone.unet.config.block_out_channels == [8, 16]
    assert (out / "unet" / "diffusion_pytorch_model.safetensors").exists()
    # Resuming continues from the checkpoint instead of starting again.
    lines.clear()
    longer = PriorRecipe(steps=210, lr=2e-3, **TINY)
    assert train_prior(longer, [data], work, out, log=lines.append) == 210
    assert lines[0] == "resumed at step 200"
    # Another recipe in the same work folder is refused.
    with pytest.raises(NoisylinkError, match="another recipe"):
        train_prior(PriorRecipe(steps=5, **{**TINY, "crop": 24}), [data], work, out)


@pytest.mark.slow
def test_x0_psnr_improves_as_noise_falls(tmp_path: Path) -> None:
    data = write_images(tmp_path / "data")
    out = tmp_path / "prior"
    train_prior(PriorRecipe(steps=60, lr=2e-3, **TINY), [data], tmp_path / "w", out, log=print)
    backbone = load_backbone(str(out))
    images = load_training_images([data], 16)
    crops = [image[:16, :16] for image in images]
    result = x0_psnr(backbone, crops, [10, 900])
    assert result[10] > result[900]


def test_cli_train_prior_bad_folder_is_one_line(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        app, ["train-prior", "--data", str(tmp_path / "none"), "--out", str(tmp_path / "p")]
    )
    assert result.exit_code == 2
    assert "training data folder not found" in result.output
    assert "Traceback" not in result.output


def test_cli_eval_prior_bad_timesteps_is_one_line(tmp_path: Path) -> None:
    data = write_images(tmp_path / "data")
    out = tmp_path / "prior"
    train_prior(PriorRecipe(steps=2, **TINY), [data], tmp_path / "w", out, log=print)
    runner = CliRunner()
    bad = runner.invoke(app, ["eval-prior", "--data", str(data), "--model", str(out),
                              "--timesteps", "5000", "--crop", "16"])
    assert bad.exit_code == 2 and "outside 0..999" in bad.output
    good = runner.invoke(app, ["eval-prior", "--data", str(data), "--model", str(out),
                               "--timesteps", "100,500", "--crop", "16"])
    assert good.exit_code == 0, good.output
    assert "t=100:" in good.output and "t=500:" in good.output


# --- checkpoints are read safely ---------------------------------------------------------------


class WritesMarker:
    """Pickles as a call to ``open(marker, "w")``: loading it unsafely creates the marker."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (open, (str(self.marker), "w"))


def plant_checkpoint(work: Path, marker: Path) -> Path:
    import torch

    work.mkdir(parents=True, exist_ok=True)
    checkpoint = work / "checkpoint.pt"
    torch.save({"recipe": WritesMarker(marker), "step": 0}, checkpoint)
    return checkpoint


def test_a_planted_checkpoint_is_refused_and_runs_nothing(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    checkpoint = plant_checkpoint(tmp_path / "work", marker)
    with pytest.raises(NoisylinkError, match="refused: it holds objects other than tensors"):
        train_prior(PriorRecipe(steps=1, **TINY), [write_images(tmp_path / "data")],
                    tmp_path / "work", tmp_path / "prior", log=lambda _: None)
    assert not marker.exists()
    assert checkpoint.exists()  # left for the user to look at


def test_cli_train_prior_refuses_a_planted_checkpoint_in_one_line(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    checkpoint = plant_checkpoint(tmp_path / "work", marker)
    result = CliRunner().invoke(app, [
        "train-prior", "--data", str(write_images(tmp_path / "data")),
        "--out", str(tmp_path / "prior"), "--work-dir", str(tmp_path / "work"), "--steps", "1",
        "--crop", "16", "--batch", "2",
    ])
    assert result.exit_code == 2, result.output
    assert result.output.startswith(f"error: {checkpoint}: refused")
    assert result.output.count("\n") == 1 and "Traceback" not in result.output
    assert not marker.exists()


@pytest.mark.parametrize("content", [b"", b"garbage, not a zip", "not-a-checkpoint"])
def test_damaged_or_foreign_checkpoints_are_one_line(tmp_path: Path, content) -> None:
    import torch

    work = tmp_path / "work"
    work.mkdir()
    if content == "not-a-checkpoint":
        torch.save({"weights": torch.zeros(3)}, work / "checkpoint.pt")
    else:
        (work / "checkpoint.pt").write_bytes(content)
    with pytest.raises(NoisylinkError) as info:
        train_prior(PriorRecipe(steps=1, **TINY), [write_images(tmp_path / "data")], work,
                    tmp_path / "prior", log=lambda _: None)
    assert str(work / "checkpoint.pt") in str(info.value) and "\n" not in str(info.value)


def test_no_unsafe_loader_is_left_in_the_package() -> None:
    import re

    package = Path(__file__).resolve().parents[2] / "noisylink"
    unsafe = re.compile(r"weights_only\s*=\s*False|allow_pickle\s*=\s*True|pickle\.loads?\("
                        r"|yaml\.load\(|yaml\.unsafe_load|(?<![.\w])(eval|exec)\(")
    found = [f"{path.relative_to(package)}:{number}"
             for path in sorted(package.rglob("*.py"))
             for number, line in enumerate(path.read_text().splitlines(), 1)
             if unsafe.search(line)]
    assert found == []
    loads = [path.name for path in package.rglob("*.py") if "torch.load(" in path.read_text()]
    assert loads == ["safeload.py"]  # the one torch.load, with weights_only=True
