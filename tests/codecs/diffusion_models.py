"""Tiny random diffusion models for tests, saved in the real diffusers layouts (no network).

Shared by the diffusion test files: ``from diffusion_models import make_tiny_stable_diffusion``.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch

TOKEN_LENGTH = 16  # the tiny text encoder's context (SD uses 77)


def tiny_pixel_unet() -> torch.nn.Module:
    """A randomly initialised three-level UNet2DModel (sizes must be multiples of 4)."""
    from diffusers import UNet2DModel

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        return UNet2DModel(
            sample_size=16,
            in_channels=3,
            out_channels=3,
            block_out_channels=(8, 16, 16),
            layers_per_block=1,
            down_block_types=("DownBlock2D", "DownBlock2D", "AttnDownBlock2D"),
            up_block_types=("AttnUpBlock2D", "UpBlock2D", "UpBlock2D"),
            norm_num_groups=4,
            attention_head_dim=8,
        ).eval()


def clip_byte_symbols() -> list[str]:
    """The 256 printable stand-ins byte-level BPE uses for the bytes 0..255, in byte order."""
    printable = {
        *range(ord("!"), ord("~") + 1),
        *range(ord("¡"), ord("¬") + 1),
        *range(ord("®"), ord("ÿ") + 1),
    }
    symbols: list[str] = []
    shifted = 0
    for byte in range(256):
        if byte in printable:
            symbols.append(chr(byte))
        else:
            symbols.append(chr(256 + shifted))
            shifted += 1
    return symbols


def write_tiny_clip_tokenizer(folder: Path) -> int:
    """A CLIP BPE tokenizer in the Stable Diffusion layout, made offline; returns its vocab size.

    The vocabulary is the two special tokens plus every byte symbol, alone and as a word end
    ("</w>"), so any text tokenizes (one token per byte); a few merges make it a real BPE.
    """
    folder.mkdir(parents=True, exist_ok=True)
    symbols = clip_byte_symbols()
    tokens = ["<|startoftext|>", "<|endoftext|>", *symbols, *(s + "</w>" for s in symbols)]
    merges = [("t", "h"), ("th", "e</w>"), ("a", "n"), ("an", "d</w>")]
    tokens += [left + right for left, right in merges]
    vocab = {token: index for index, token in enumerate(tokens)}
    (folder / "vocab.json").write_text(json.dumps(vocab, ensure_ascii=False), encoding="utf-8")
    merge_lines = ["#version: 0.2", *(f"{left} {right}" for left, right in merges)]
    (folder / "merges.txt").write_text("\n".join(merge_lines) + "\n", encoding="utf-8")
    config = {"tokenizer_class": "CLIPTokenizer", "model_max_length": TOKEN_LENGTH}
    (folder / "tokenizer_config.json").write_text(json.dumps(config))
    return len(vocab)


def make_tiny_stable_diffusion(folder: Path) -> Path:
    """Write a tiny randomly initialised Stable Diffusion pipeline folder; return the folder.

    Same layout as stabilityai/stable-diffusion-2-1-base (model_index.json; vae, unet,
    text_encoder, tokenizer, scheduler). VAE factor 2, latent channels 4, and the UNet halves
    once more, so image sizes must be multiples of 4. Deterministic (seeded, RNG state kept).
    """
    from diffusers import AutoencoderKL, DDPMScheduler, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel

    folder.mkdir(parents=True, exist_ok=True)
    vocab_size = write_tiny_clip_tokenizer(folder / "tokenizer")
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        vae = AutoencoderKL(
            in_channels=3,
            out_channels=3,
            down_block_types=("DownEncoderBlock2D", "DownEncoderBlock2D"),
            up_block_types=("UpDecoderBlock2D", "UpDecoderBlock2D"),
            block_out_channels=(8, 16),
            layers_per_block=1,
            latent_channels=4,
            norm_num_groups=4,
            sample_size=32,
        )
        unet = UNet2DConditionModel(
            sample_size=16,
            in_channels=4,
            out_channels=4,
            down_block_types=("CrossAttnDownBlock2D", "DownBlock2D"),
            up_block_types=("UpBlock2D", "CrossAttnUpBlock2D"),
            block_out_channels=(16, 32),
            layers_per_block=1,
            norm_num_groups=4,
            cross_attention_dim=16,
            attention_head_dim=4,
        )
        text_encoder = CLIPTextModel(
            CLIPTextConfig(
                vocab_size=vocab_size,
                hidden_size=16,
                intermediate_size=32,
                num_hidden_layers=2,
                num_attention_heads=2,
                max_position_embeddings=TOKEN_LENGTH,
                bos_token_id=0,
                eos_token_id=1,
                pad_token_id=1,
            )
        )
    scheduler = DDPMScheduler(
        num_train_timesteps=1000,
        beta_schedule="scaled_linear",
        beta_start=0.00085,
        beta_end=0.012,
        prediction_type="epsilon",
        clip_sample=False,
        steps_offset=1,
    )
    vae.save_pretrained(folder / "vae")
    unet.save_pretrained(folder / "unet")
    text_encoder.save_pretrained(folder / "text_encoder")
    scheduler.save_pretrained(folder / "scheduler")
    model_index = {
        "_class_name": "StableDiffusionPipeline",
        "_diffusers_version": "0.42.0",
        "feature_extractor": [None, None],
        "requires_safety_checker": False,
        "safety_checker": [None, None],
        "scheduler": ["diffusers", "DDPMScheduler"],
        "text_encoder": ["transformers", "CLIPTextModel"],
        "tokenizer": ["transformers", "CLIPTokenizer"],
        "unet": ["diffusers", "UNet2DConditionModel"],
        "vae": ["diffusers", "AutoencoderKL"],
    }
    (folder / "model_index.json").write_text(json.dumps(model_index, indent=2) + "\n")
    return folder


_PIXEL_PRIOR: list[Path] = []


def tiny_pixel_prior() -> Path:
    """A tiny random pixel prior (``unet/`` + ``scheduler/``) in a temporary folder, made once
    per test process; usable at collection time (the decoder fuzz test needs it there)."""
    if not _PIXEL_PRIOR:
        import tempfile

        from diffusers import DDPMScheduler

        folder = Path(tempfile.mkdtemp(prefix="noisylink-tiny-prior-"))
        tiny_pixel_unet().save_pretrained(folder / "unet")
        DDPMScheduler(num_train_timesteps=1000).save_pretrained(folder / "scheduler")
        _PIXEL_PRIOR.append(folder)
    return _PIXEL_PRIOR[0]
