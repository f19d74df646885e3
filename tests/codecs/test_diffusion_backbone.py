"""Diffusion backbones: tiny random pixel UNets and a tiny random Stable Diffusion, saved in the
real diffusers layouts and loaded back offline; sizes, identities, errors, the bundled prior.

The tiny models come from ``diffusion_models`` (shared with the other diffusion tests).
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest
import torch
from diffusion_models import (
    TOKEN_LENGTH,
    make_tiny_stable_diffusion,
    tiny_pixel_unet,
)

from noisylink.codecs.diffusion.backbone import (
    BUNDLED_PRIOR,
    LatentBackbone,
    PixelBackbone,
    load_backbone,
    resolve_torch_device,
)
from noisylink.errors import NoisylinkError
from noisylink.weights import BUNDLED, bundled_weights


@pytest.fixture(scope="session")
def tiny_stable_diffusion(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One tiny Stable Diffusion folder for the whole session."""
    return make_tiny_stable_diffusion(tmp_path_factory.mktemp("tiny-sd"))


def random_images(batch: int, height: int, width: int) -> torch.Tensor:
    """Seeded images in [-1, 1]."""
    generator = torch.Generator().manual_seed(1)
    return torch.rand(batch, 3, height, width, generator=generator) * 2 - 1


# ---- pixel backbones ----------------------------------------------------------------------


def test_pixel_subfolder_layout_fp16_weights_load_as_fp32(tmp_path: Path) -> None:
    from diffusers import DDPMScheduler

    unet = tiny_pixel_unet()
    scheduler = DDPMScheduler(num_train_timesteps=1000, prediction_type="epsilon")
    unet.to(torch.float16).save_pretrained(tmp_path / "unet")  # stored like the bundled prior
    scheduler.save_pretrained(tmp_path / "scheduler")

    backbone = load_backbone(str(tmp_path))

    assert isinstance(backbone, PixelBackbone)
    assert backbone.kind == "pixel"
    assert backbone.clamp_x0 is True
    assert backbone.dtype == torch.float32
    assert backbone.device == torch.device("cpu")
    assert backbone.unet.dtype == torch.float32
    assert backbone.prediction_type == "epsilon"
    assert backbone.train_timesteps == 1000
    assert backbone.alphas_cumprod.dtype == torch.float64
    assert backbone.alphas_cumprod.device == torch.device("cpu")
    assert torch.equal(backbone.alphas_cumprod, scheduler.alphas_cumprod.double())
    assert backbone.sample_shape(8, 12) == (3, 8, 12)

    images = random_images(2, 8, 12)
    samples = backbone.to_sample(images)
    assert samples.dtype == torch.float32
    assert torch.equal(samples, images)
    assert torch.equal(backbone.from_sample(samples), images)
    assert torch.equal(backbone.from_sample(3 * samples), (3 * samples).clamp(-1, 1))

    output = backbone.model_output(samples, 500)
    assert output.shape == samples.shape
    assert output.dtype == torch.float32
    with torch.no_grad():
        expected = unet.to(torch.float16).float()(images, 500).sample
    torch.testing.assert_close(output, expected)


def test_pixel_hub_root_layout_with_v_prediction(tmp_path: Path) -> None:
    from diffusers import DDPMScheduler

    unet = tiny_pixel_unet()
    scheduler = DDPMScheduler(
        num_train_timesteps=100, beta_schedule="squaredcos_cap_v2", prediction_type="v_prediction"
    )
    unet.save_pretrained(tmp_path)  # config.json + weights at the root, like google/ddpm-*
    scheduler.save_pretrained(tmp_path)

    backbone = load_backbone(tmp_path)

    assert backbone.kind == "pixel"
    assert backbone.prediction_type == "v_prediction"
    assert backbone.train_timesteps == 100
    assert torch.equal(backbone.alphas_cumprod, scheduler.alphas_cumprod.double())
    images = random_images(3, 16, 8)
    output = backbone.model_output(backbone.to_sample(images), 7)
    with torch.no_grad():
        expected = unet(images, 7).sample
    torch.testing.assert_close(output, expected)
    with pytest.raises(ValueError, match="timestep 100"):
        backbone.model_output(images, 100)


def test_pixel_bad_image_size_is_a_clear_error(tmp_path: Path) -> None:
    from diffusers import DDPMScheduler

    tiny_pixel_unet().save_pretrained(tmp_path / "unet")
    DDPMScheduler().save_pretrained(tmp_path / "scheduler")
    backbone = load_backbone(str(tmp_path))

    with pytest.raises(NoisylinkError, match=r"10x12 .* multiples of 4"):
        backbone.sample_shape(10, 12)
    with pytest.raises(NoisylinkError, match="multiples of 4"):
        backbone.to_sample(random_images(1, 12, 6))


def test_load_is_cached_per_model_device_and_dtype(tmp_path: Path) -> None:
    from diffusers import DDPMScheduler

    tiny_pixel_unet().save_pretrained(tmp_path / "unet")
    DDPMScheduler().save_pretrained(tmp_path / "scheduler")

    first = load_backbone(str(tmp_path))
    assert load_backbone(str(tmp_path), device="cpu", dtype=torch.float32) is first
    assert load_backbone(tmp_path, device=torch.device("cpu")) is first
    double = load_backbone(str(tmp_path), dtype=torch.float64)
    assert double is not first
    assert double.dtype == torch.float64
    assert double.model_output(random_images(1, 4, 4), 0).dtype == torch.float32


def test_unusable_models_are_one_line_errors(tmp_path: Path) -> None:
    cases = {
        str(tmp_path / "missing"): "folder not found",
        "nobody-here/no-such-diffusion-model": "not in the local Hugging Face cache",
        str(tmp_path): "no diffusion model in",
    }
    (tmp_path / "notes.txt").write_text("not a model")
    cases[str(tmp_path / "notes.txt")] = "is a file"
    broken = tmp_path / "broken"
    (broken / "unet").mkdir(parents=True)
    (broken / "unet" / "config.json").write_text("{not json")
    (broken / "scheduler").mkdir()
    (broken / "scheduler" / "scheduler_config.json").write_text("{}")
    cases[str(broken)] = "unreadable"
    weightless = tmp_path / "weightless"
    tiny_pixel_unet().save_config(weightless / "unet")
    (weightless / "scheduler").mkdir()
    (weightless / "scheduler" / "scheduler_config.json").write_text("{}")
    cases[str(weightless)] = "Error"

    for model, reason in cases.items():
        with pytest.raises(NoisylinkError) as caught:
            load_backbone(model)
        message = str(caught.value)
        assert message.startswith(f"cannot load diffusion model {model!r}: ")
        assert reason in message
        assert "\n" not in message
        assert caught.value.__cause__ is None


def test_sample_prediction_type_is_refused(tmp_path: Path) -> None:
    from diffusers import DDPMScheduler

    tiny_pixel_unet().save_pretrained(tmp_path / "unet")
    DDPMScheduler(prediction_type="sample").save_pretrained(tmp_path / "scheduler")
    with pytest.raises(NoisylinkError, match="prediction_type 'sample' is not supported"):
        load_backbone(str(tmp_path))


# ---- the latent (Stable Diffusion) backbone -----------------------------------------------


def test_latent_backbone_end_to_end(tiny_stable_diffusion: Path) -> None:
    backbone = load_backbone(str(tiny_stable_diffusion))

    assert isinstance(backbone, LatentBackbone)
    assert backbone.kind == "latent"
    assert backbone.clamp_x0 is False
    assert backbone.prediction_type == "epsilon"
    assert backbone.train_timesteps == 1000
    assert backbone.alphas_cumprod.dtype == torch.float64
    assert backbone.alphas_cumprod.shape == (1000,)
    assert backbone.empty_embedding.shape == (1, TOKEN_LENGTH, 16)
    assert backbone.sample_shape(16, 24) == (4, 8, 12)

    images = random_images(2, 16, 24)
    samples = backbone.to_sample(images)
    assert samples.shape == (2, 4, 8, 12)
    assert samples.dtype == torch.float32
    decoded = backbone.from_sample(samples)
    assert decoded.shape == (2, 3, 16, 24)
    assert decoded.dtype == torch.float32
    assert decoded.min() >= -1 and decoded.max() <= 1
    output = backbone.model_output(samples, 999)
    assert output.shape == samples.shape
    assert output.dtype == torch.float32
    assert torch.isfinite(output).all()


def test_latent_backbone_matches_the_components(tiny_stable_diffusion: Path) -> None:
    from diffusers import AutoencoderKL, UNet2DConditionModel
    from transformers import CLIPTextModel, CLIPTokenizer

    backbone = load_backbone(str(tiny_stable_diffusion))
    vae = AutoencoderKL.from_pretrained(tiny_stable_diffusion / "vae").eval()
    unet = UNet2DConditionModel.from_pretrained(tiny_stable_diffusion / "unet").eval()
    tokenizer = CLIPTokenizer.from_pretrained(tiny_stable_diffusion / "tokenizer")
    text_encoder = CLIPTextModel.from_pretrained(tiny_stable_diffusion / "text_encoder").eval()

    images = random_images(2, 8, 8)
    with torch.no_grad():
        ids = tokenizer("", padding="max_length", max_length=TOKEN_LENGTH, return_tensors="pt")
        assert ids.input_ids[0, :2].tolist() == [0, 1]  # <|startoftext|> <|endoftext|> pad...
        context = text_encoder(ids.input_ids)[0].expand(2, -1, -1)
        latents = vae.encode(images).latent_dist.mode() * vae.config.scaling_factor
        expected = unet(latents, 250, encoder_hidden_states=context).sample
        decoded = vae.decode(latents / vae.config.scaling_factor).sample.clamp(-1, 1)

    samples = backbone.to_sample(images)
    torch.testing.assert_close(samples, latents)
    torch.testing.assert_close(backbone.model_output(samples, 250), expected)
    torch.testing.assert_close(backbone.from_sample(samples), decoded)


def test_latent_bad_image_size_is_a_clear_error(tiny_stable_diffusion: Path) -> None:
    backbone = load_backbone(str(tiny_stable_diffusion))
    with pytest.raises(NoisylinkError, match=r"18x16 .* latent .* multiples of 4"):
        backbone.sample_shape(18, 16)
    with pytest.raises(NoisylinkError, match="multiples of 4"):
        backbone.to_sample(random_images(1, 6, 8))


def test_latent_folder_missing_a_component(tiny_stable_diffusion: Path, tmp_path: Path) -> None:
    partial = tmp_path / "partial-sd"
    shutil.copytree(tiny_stable_diffusion, partial, ignore=shutil.ignore_patterns("text_encoder"))
    with pytest.raises(NoisylinkError, match="has no text_encoder/ subfolder"):
        load_backbone(str(partial))


def test_tiny_stable_diffusion_is_a_real_pipeline_folder(tiny_stable_diffusion: Path) -> None:
    from diffusers import StableDiffusionPipeline
    from diffusers.utils import logging as diffusers_logging

    diffusers_logging.set_verbosity_error()
    pipeline = StableDiffusionPipeline.from_pretrained(tiny_stable_diffusion)
    assert pipeline.vae_scale_factor == 2
    assert pipeline.tokenizer.model_max_length == TOKEN_LENGTH


def test_latent_backbone_in_half_precision(tiny_stable_diffusion: Path) -> None:
    backbone = load_backbone(str(tiny_stable_diffusion), dtype=torch.float16)
    assert backbone.dtype == torch.float16
    assert backbone.empty_embedding.dtype == torch.float16
    samples = backbone.to_sample(random_images(1, 8, 8))
    assert samples.dtype == torch.float32
    assert backbone.model_output(samples, 10).dtype == torch.float32
    assert backbone.from_sample(samples).dtype == torch.float32


# ---- the bundled prior, devices, import cost -----------------------------------------------


@pytest.mark.skipif(
    not bundled_weights(BUNDLED_PRIOR).folder.is_dir(),
    reason="the bundled prior is not installed yet",
)
def test_bundled_prior() -> None:
    backbone = load_backbone("bundled")
    assert backbone.kind == "pixel"
    assert backbone.prediction_type == "epsilon"
    assert backbone.train_timesteps == 1000
    assert backbone.dtype == torch.float32
    multiple = backbone.size_multiple
    channels, height, width = backbone.sample_shape(2 * multiple, multiple)
    assert channels == 3
    x_t = torch.randn(1, channels, height, width, generator=torch.Generator().manual_seed(0))
    output = backbone.model_output(x_t, 500)
    assert output.shape == x_t.shape
    assert torch.isfinite(output).all()


def test_missing_bundled_prior_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    from noisylink.codecs.diffusion import backbone as module

    missing = replace(BUNDLED[BUNDLED_PRIOR], folder=Path("/nonexistent/bsds-ddpm"))
    monkeypatch.setitem(BUNDLED, BUNDLED_PRIOR, missing)
    monkeypatch.setattr(module, "_CACHE", {})
    with pytest.raises(NoisylinkError, match="'bundled': the bundled prior is not installed"):
        load_backbone("bundled")


def test_resolve_torch_device() -> None:
    assert resolve_torch_device("cpu") == torch.device("cpu")
    expected_auto = "cuda" if torch.cuda.is_available() else "cpu"
    assert resolve_torch_device("auto").type == expected_auto
    with pytest.raises(NoisylinkError, match="unknown torch device"):
        resolve_torch_device("gpu-please")
    if not torch.cuda.is_available():
        for name in ("cuda", "cuda:1"):
            with pytest.raises(NoisylinkError, match="CUDA is not available"):
                resolve_torch_device(name)
            with pytest.raises(NoisylinkError, match="CUDA is not available"):
                load_backbone("bundled", device=name)


@pytest.mark.slow
def test_importing_the_module_does_not_import_diffusers() -> None:
    code = (
        "import sys, noisylink.codecs.diffusion.backbone; "
        "print(sorted(m for m in ('diffusers', 'transformers') if m in sys.modules))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"
