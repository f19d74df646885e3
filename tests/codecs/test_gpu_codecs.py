"""The codecs with a network on a GPU (``gpu`` marker: these skip without CUDA).

A scenario's ``device: cuda`` must move the network there, and a clean payload must decode to
what the encoder reconstructed, as on the CPU; the CPU and GPU may differ only in the last
bits of the floats, so the pictures of the two devices are compared within a small margin.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from diffusion_models import tiny_pixel_prior

from noisylink.codecs import CODECS
from noisylink.metrics import psnr

pytestmark = pytest.mark.gpu


def build(settings: dict[str, Any], device: str) -> Any:
    codec = CODECS.build(CODECS.config(settings))
    codec.bind_device(device)
    return codec


def picture(seed: int, side: int, channels: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, (side, side, channels), dtype=np.uint8)


@pytest.mark.parametrize("name", ["ddcm", "turbo-ddcm", "robust-turbo-ddcm"])
def test_a_diffusion_codec_on_cuda_decodes_its_own_reconstruction(name: str) -> None:
    settings = {"name": name, "model": str(tiny_pixel_prior()), "K": 64, "T": 3}
    if name != "ddcm":
        settings["M"] = 4
    gpu, cpu = build(settings, "cuda"), build(settings, "cpu")
    images = [picture(seed, 16, 3) for seed in range(2)]
    encoded, pictures = gpu.encode_with_reconstructions(images)
    assert gpu.backbone.device.type == "cuda"
    decoded = gpu.decode_batch([(e.payload, e.n_bits, e.side_info) for e in encoded])
    for got, want in zip(decoded, pictures, strict=True):
        assert np.array_equal(got, want)
    on_cpu = cpu.decode_batch([(e.payload, e.n_bits, e.side_info) for e in encoded])
    for got, want in zip(on_cpu, decoded, strict=True):
        assert psnr(want, got) > 40  # the same atoms, replayed on another device


@pytest.mark.parametrize("name", ["necst", "iabf"])
def test_a_jscc_codec_on_cuda_matches_the_cpu(name: str) -> None:
    settings = {"name": name, "eps": 0.1, "sampling": "mode"}
    gpu, cpu = build(settings, "cuda"), build(settings, "cpu")
    digit = picture(3, 28, 1)
    encoded = gpu.encode(digit)
    assert next(gpu.model.parameters()).device.type == "cuda"
    reference = cpu.encode(digit)
    assert np.count_nonzero(np.unpackbits(np.frombuffer(encoded.payload, np.uint8))
                            != np.unpackbits(np.frombuffer(reference.payload, np.uint8))) <= 1
    got = gpu.decode(reference.payload, reference.n_bits, reference.side_info)
    want = cpu.decode(reference.payload, reference.n_bits, reference.side_info)
    assert np.abs(got.astype(int) - want.astype(int)).max() <= 1
