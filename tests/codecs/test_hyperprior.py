"""The hyperprior codec: its density, exact entropy coding, a bitstream that survives any bits,
training that resumes, and the link."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from noisylink.codecs import CODECS, codec_class
from noisylink.codecs.learned.codec import (
    HEADER,
    HyperpriorSideInfo,
    pack_payload,
    unpack_payload,
)
from noisylink.codecs.learned.coding import Y_RADIUS, Z_RADIUS, decode_latents, encode_latents
from noisylink.codecs.learned.factorized import FactorizedPrior
from noisylink.codecs.learned.model import HyperpriorModel, HyperpriorShape
from noisylink.codecs.learned.training import LearnedRecipe, export_model, train_hyperprior
from noisylink.codecs.learned.weights import load_model
from noisylink.errors import DecodeError, NoisylinkError

SMALL = HyperpriorShape(N=16, M=24)


def small_model(seed: int = 0) -> HyperpriorModel:
    torch.manual_seed(seed)
    return HyperpriorModel(SMALL).eval()


def models_folder(root: Path, qualities: tuple[int, ...] = (1,)) -> Path:
    for quality in qualities:
        export_model(small_model(quality), root / f"quality-{quality}", {"lambda": 0.01})
    load_model.cache_clear()
    return root


def test_factorized_prior_table_is_its_likelihood_at_the_integers() -> None:
    torch.manual_seed(1)
    prior = FactorizedPrior(5)
    table = prior.pmf_table(8)
    assert table.shape == (5, 17) and table.dtype == torch.float64
    torch.testing.assert_close(table.sum(-1), torch.ones(5, dtype=torch.float64))
    integers = torch.arange(-8, 9, dtype=torch.float32).expand(1, 5, 1, 17).clone()
    with torch.no_grad():
        likelihood = prior.likelihood(integers)[0, :, 0, :].double()
    # the table is the likelihood renormalised over the support (tails cut off)
    torch.testing.assert_close(table, likelihood / likelihood.sum(-1, keepdim=True), rtol=1e-4,
                               atol=1e-7)


def test_entropy_coding_round_trips_the_rounded_latent_exactly() -> None:
    model = small_model()
    x = torch.rand(1, 3, 128, 64, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        y = model.g_a(x)[0] * 4  # spread the values over many symbols
        z_hat = torch.clamp(torch.round(model.h_a(y[None])[0]), -Z_RADIUS, Z_RADIUS)
        means, _ = model.h_s(z_hat[None]).chunk(2, dim=1)
    z_words, y_words = encode_latents(model, y)
    decoded = decode_latents(model, z_words, y_words, tuple(y.shape[-2:]))
    expected = torch.clamp(torch.round(y - means[0]), -Y_RADIUS, Y_RADIUS) + means[0]
    assert torch.equal(decoded, expected)


def test_any_words_decode_to_a_finite_latent_in_range() -> None:
    model = small_model()
    y = model.g_a(torch.rand(1, 3, 64, 64))[0].detach()
    z_words, y_words = encode_latents(model, y)
    rng = np.random.default_rng(3)
    cases = [
        (z_words[:0], y_words[:0]),
        (z_words, y_words[: len(y_words) // 2]),
        (rng.integers(0, 2**32, 40, dtype=np.uint32), rng.integers(0, 2**32, 9, dtype=np.uint32)),
        (np.full(5000, 0xFFFFFFFF, dtype=np.uint32), np.full(5000, 0xFFFFFFFF, dtype=np.uint32)),
        (np.zeros(7, dtype=np.uint32), np.append(y_words, np.zeros(3, dtype=np.uint32))),
    ]
    for _ in range(60):
        flipped = y_words.view(np.uint8).copy()
        flipped[rng.integers(len(flipped))] ^= np.uint8(1 << rng.integers(8))
        cases.append((z_words, flipped.view(np.uint32)))
    for z, y_stream in cases:
        latent = decode_latents(model, z, y_stream, tuple(y.shape[-2:]))
        assert latent.shape == y.shape and torch.isfinite(latent).all()


def side_info(quality: int = 1, height: int = 64, width: int = 64) -> HyperpriorSideInfo:
    return HyperpriorSideInfo(height, width, 3, "m", quality)


def test_header_problems_are_decode_errors_and_streams_split_where_the_header_says() -> None:
    z = np.arange(3, dtype=np.uint32)
    y = np.arange(10, 15, dtype=np.uint32)
    payload = pack_payload(1, 64, 64, z, y)
    got_z, got_y = unpack_payload(payload, side_info())
    assert np.array_equal(got_z, z) and np.array_equal(got_y, y)
    # a ragged tail reads as zero-padded words
    _, short_y = unpack_payload(payload[:-1], side_info())
    assert len(short_y) == 5 and short_y[-1] == 14 & 0xFFFFFF
    broken = {
        "truncated": payload[: HEADER.size - 1],
        "magic": b"XP" + payload[2:],
        "version": payload[:2] + b"\x07" + payload[3:],
        "quality": payload[:3] + b"\x02" + payload[4:],
        "size": payload[:4] + b"\x41" + payload[5:],
        "z past the end": payload[: HEADER.size - 2] + b"\xff\x00" + payload[HEADER.size:],
    }
    for name, damaged in broken.items():
        with pytest.raises(DecodeError):
            unpack_payload(damaged, side_info())
        assert name


def test_codec_round_trips_a_picture_and_survives_any_payload(tmp_path: Path) -> None:
    folder = models_folder(tmp_path / "models")
    codec = CODECS.build(CODECS.config({"name": "hyperprior", "model": str(folder), "quality": 1}))
    rng = np.random.default_rng(4)
    image = rng.integers(0, 256, (70, 90, 3), dtype=np.uint8)  # not a multiple of 64
    encoded = codec.encode(image)
    assert encoded.n_bits == 8 * len(encoded.payload)
    clean = codec.decode(encoded.payload, encoded.n_bits, encoded.side_info)
    assert clean.shape == image.shape and clean.dtype == np.uint8
    again = codec.decode(encoded.payload, encoded.n_bits, encoded.side_info)
    assert np.array_equal(clean, again)
    payload = bytearray(encoded.payload)
    decodable = 0
    for trial in range(40):
        damaged = bytearray(payload)
        for _ in range(1 + trial % 4):
            position = int(rng.integers(len(damaged)))
            damaged[position] ^= 1 << int(rng.integers(8))
        try:
            picture = codec.decode(bytes(damaged), encoded.n_bits, encoded.side_info)
        except DecodeError:
            continue
        decodable += 1
        assert picture.shape == image.shape and picture.dtype == np.uint8
    assert decodable > 20  # most flips land in the streams, which always decode
    gray = rng.integers(0, 256, (64, 64, 1), dtype=np.uint8)
    gray_encoded = codec.encode(gray)
    assert codec.decode(gray_encoded.payload, gray_encoded.n_bits,
                        gray_encoded.side_info).shape == (64, 64, 1)


def test_config_names_missing_models_in_one_line(tmp_path: Path) -> None:
    from noisylink.scenarios import parse_scenario

    with pytest.raises(NoisylinkError, match="no hyperprior models") as info:
        parse_scenario({"name": "x", "codec": {"name": "hyperprior", "model": str(tmp_path)},
                        "channel": {"name": "bsc", "ber": 0.0}}, "test")
    assert "\n" not in str(info.value)
    folder = models_folder(tmp_path / "models", (1, 2))
    codec = codec_class("hyperprior")
    config = CODECS.config({"name": "hyperprior", "model": str(folder), "quality": 2})
    assert codec.rate_range(codec.rate_knobs[0], config) == (1, 2)
    with pytest.raises(NoisylinkError, match="no quality 3 model: choose one of 1, 2"):
        parse_scenario({"name": "x", "codec": {"name": "hyperprior", "model": str(folder),
                                               "quality": 3},
                        "channel": {"name": "bsc", "ber": 0.0}}, "test")


def test_side_info_reads_back_from_json() -> None:
    info = side_info(quality=3)
    assert HyperpriorSideInfo.from_json(info.to_json()) == info
    with pytest.raises(ValueError, match="quality"):
        HyperpriorSideInfo.from_json({**info.to_json(), "quality": 0})


def synthetic_images(folder: Path, count: int = 3) -> Path:
    from PIL import Image

    folder.mkdir(parents=True)
    rng = np.random.default_rng(5)
    for index in range(count):
        ramp = np.linspace(0, 255, 96)[None, :, None] * np.ones((80, 1, 3))
        noise = rng.normal(0, 20, (80, 96, 3))
        picture = np.clip(ramp + noise, 0, 255).astype(np.uint8)
        Image.fromarray(picture).save(folder / f"{index}.png")
    return folder


@pytest.mark.slow
def test_training_lowers_the_loss_exports_and_resumes(tmp_path: Path) -> None:
    data = synthetic_images(tmp_path / "images")
    recipe = LearnedRecipe(lmbda=0.01, N=16, M=24, crop=64, batch=2, steps=40, lr=1e-3)
    out = tmp_path / "quality-1"
    lines: list[str] = []
    assert train_hyperprior(recipe, [data], out, log=lines.append) == 40
    description = json.loads((out / "config.json").read_text())
    assert description["shape"] == {"N": 16, "M": 24} and description["steps_done"] == 40
    load_model.cache_clear()
    assert isinstance(load_model(out), HyperpriorModel)
    longer = recipe.model_copy(update={"steps": 60})
    resumed: list[str] = []
    assert train_hyperprior(longer, [data], out, log=resumed.append) == 60
    assert resumed[0] == "resumed at step 40"
    other = recipe.model_copy(update={"lmbda": 0.02})
    with pytest.raises(NoisylinkError, match="another recipe"):
        train_hyperprior(other, [data], out, log=lambda _: None)


def test_hyperprior_through_a_bsc_link(tmp_path: Path) -> None:
    from noisylink.link.runner import run_scenario
    from noisylink.results.file import read_rows
    from noisylink.scenarios import parse_scenario

    folder = models_folder(tmp_path / "models")
    scenario = parse_scenario({
        "name": "hp", "seed": 1, "images": {"source": "samples", "limit": 1, "size": 64},
        "codec": {"name": "hyperprior", "model": str(folder), "quality": 1},
        "channel": {"name": "bsc", "ber": [0.0, 1e-2]}, "trials": 2,
    }, "test")
    rows = read_rows(run_scenario(scenario, tmp_path / "out").results_path)
    assert len(rows) == 4
    clean = [row for row in rows if row["channel_value"] == "0.0"]
    assert all(row["decoded"] == "true" for row in clean)
    assert len({row["psnr"] for row in clean}) == 1  # the same picture every trial


@pytest.mark.slow
def test_training_can_start_from_another_rate_point_and_drops_its_rate(tmp_path: Path) -> None:
    data = synthetic_images(tmp_path / "images")
    first = LearnedRecipe(lmbda=0.01, N=16, M=24, crop=64, batch=2, steps=2, lr=1e-3)
    train_hyperprior(first, [data], tmp_path / "quality-1", log=lambda _: None)
    load_model.cache_clear()
    start = load_model(tmp_path / "quality-1").state_dict()
    second = first.model_copy(update={"lmbda": 0.02, "steps": 4, "lr": 1e-9, "lr_drop_at": 0.5,
                                      "init": str(tmp_path / "quality-1")})
    train_hyperprior(second, [data], tmp_path / "quality-2", log=lambda _: None)
    load_model.cache_clear()
    tuned = load_model(tmp_path / "quality-2").state_dict()
    assert all(torch.allclose(tuned[name], value, atol=1e-3) for name, value in start.items())
    state = torch.load(tmp_path / "quality-2" / "checkpoint.pt", weights_only=True)
    assert state["optimizer"]["param_groups"][0]["lr"] == pytest.approx(1e-10)
    wider = second.model_copy(update={"N": 24})
    with pytest.raises(NoisylinkError, match=r"init: .*quality-1 has shape"):
        train_hyperprior(wider, [data], tmp_path / "quality-3", log=lambda _: None)
    with pytest.raises(NoisylinkError, match=r"init: .*no such file"):
        train_hyperprior(second.model_copy(update={"init": str(tmp_path / "nothing")}), [data],
                         tmp_path / "quality-4", log=lambda _: None)
