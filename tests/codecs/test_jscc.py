"""NECST/IABF: the code distribution, adversarial flips, the TC shuffle, training, link codecs."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from noisylink.codecs import CODECS
from noisylink.codecs.jscc.evaluation import PAPER_L2, JsccScore, iabf_at_or_below_necst
from noisylink.codecs.jscc.model import JsccModel, JsccShape, code_probability, sample_bsc
from noisylink.codecs.jscc.training import (
    MnistSplit,
    Recipe,
    TcDiscriminator,
    adversarial_flips,
    bitwise_information,
    l2_distortion,
    load_mnist,
    reconstruction_loss,
    sampled_flip_mask,
    save_model,
    score_function_surrogate,
    shuffle_bits,
    train_jscc,
)
from noisylink.codecs.jscc.weights import BUNDLED_EPS, METHODS, load_model, model_dir
from noisylink.errors import LinkError, NoisylinkError

MNIST = Path(__file__).resolve().parents[3] / "shared" / "data" / "mnist" / "mnist.npz"
needs_mnist = pytest.mark.skipif(not MNIST.exists(), reason="MNIST not at ../shared/data/mnist")


def test_code_probability_is_the_spec_formula() -> None:
    logits = torch.linspace(-6, 6, 41)
    for eps in (0.0, 0.1, 0.25, 0.4):
        expected = torch.sigmoid(logits) * (1 - 2 * eps) + eps
        torch.testing.assert_close(code_probability(logits, eps), expected)
    # and it is what a bit drawn from σ(ℓ) then sent over BSC(ε) is: checked by sampling
    generator = torch.Generator().manual_seed(0)
    logits = torch.tensor([-2.0, 0.0, 1.5])
    bits = torch.bernoulli(torch.sigmoid(logits).expand(200_000, -1), generator=generator)
    received = sample_bsc(bits, 0.2, generator)
    torch.testing.assert_close(received.mean(0), code_probability(logits, 0.2), atol=4e-3,
                               rtol=0)


def test_sample_bsc_flips_at_the_given_rate() -> None:
    bits = torch.zeros(100_000)
    flipped = sample_bsc(bits, 0.3, torch.Generator().manual_seed(1))
    assert abs(float(flipped.mean()) - 0.3) < 0.005
    assert torch.equal(sample_bsc(bits, 0.0), bits)


def tiny_model(seed: int = 0, bits: int = 16) -> JsccModel:
    torch.manual_seed(seed)
    return JsccModel(JsccShape(pixels=20, bits=bits, hidden=12))


def test_adversarial_flips_pick_only_loss_raising_bits_largest_first() -> None:
    model = tiny_model()
    pixels = torch.rand(6, 20, generator=torch.Generator().manual_seed(2))
    codes = torch.bernoulli(torch.full((3, 6, 16), 0.5), generator=torch.Generator().manual_seed(3))
    flipped = adversarial_flips(model, codes, pixels, count=4)

    probe = codes.clone().requires_grad_(True)
    reconstruction_loss(model.decode_logits(probe), pixels).sum().backward()
    gradient = probe.grad
    assert gradient is not None
    raises_loss = ((codes == 0) & (gradient > 0)) | ((codes == 1) & (gradient < 0))
    changed = flipped != codes
    assert changed.any()
    assert not (changed & ~raises_loss).any(), "a bit was flipped whose flip lowers the loss"
    assert (changed.sum(-1) <= 4).all()
    gain = torch.where(raises_loss, gradient.abs(), torch.zeros_like(gradient))
    for index in np.ndindex(*codes.shape[:2]):
        candidates = int(raises_loss[index].sum())
        assert int(changed[index].sum()) == min(4, candidates)
        if changed[index].any() and (~changed[index] & raises_loss[index]).any():
            assert gain[index][changed[index]].min() >= gain[index][~changed[index]].max()
    # the flips really hurt: the loss of the flipped codes is higher
    before = reconstruction_loss(model.decode_logits(codes), pixels)
    after = reconstruction_loss(model.decode_logits(flipped), pixels)
    assert (after > before).float().mean() > 0.9
    assert torch.equal(adversarial_flips(model, codes, pixels, count=0), codes)


def test_adversarial_flips_never_flip_a_bit_that_would_lower_the_loss() -> None:
    # A decoder whose loss falls when any 0 becomes 1: no 0 is a candidate, so only ones flip.
    model = tiny_model()
    with torch.no_grad():
        for layer in model.decoder:
            if isinstance(layer, torch.nn.Linear):
                layer.weight.abs_()
                layer.bias.zero_()
    pixels = torch.ones(4, 20)  # brighter output = lower loss; more ones = brighter
    codes = torch.zeros(1, 4, 16)
    codes[..., :3] = 1.0
    flipped = adversarial_flips(model, codes, pixels, count=10)
    assert torch.equal(flipped[..., 3:], codes[..., 3:])
    assert flipped[..., :3].sum() == 0


def test_sampled_flips_choose_count_loss_raising_bits_favouring_large_gradients() -> None:
    model = tiny_model()
    pixels = torch.rand(6, 20, generator=torch.Generator().manual_seed(2))
    code = torch.bernoulli(torch.full((6, 16), 0.5), generator=torch.Generator().manual_seed(3))
    probe = code.clone().requires_grad_(True)
    reconstruction_loss(model.decode_logits(probe), pixels).sum().backward()
    gradient = probe.grad
    assert gradient is not None
    raises_loss = ((code == 0) & (gradient > 0)) | ((code == 1) & (gradient < 0))
    torch.manual_seed(7)
    counts = torch.zeros_like(code)
    draws = 4000
    for _ in range(draws):
        mask = sampled_flip_mask(model, code, pixels, count=3)
        assert set(mask.unique().tolist()) <= {0.0, 1.0}
        assert not (mask.bool() & ~raises_loss).any(), "a bit was chosen whose flip lowers the loss"
        assert torch.equal(mask.sum(-1), raises_loss.sum(-1).clamp(max=3).float())
        counts += mask
    # the draw is random (not the same top-k every time) and follows softmax(g²): per image,
    # how often a bit is chosen rises with its g² among the candidates
    for row in range(code.shape[0]):
        chosen = counts[row][raises_loss[row]]
        if len(chosen) > 3:
            assert (chosen > 0).sum() > 3, "sampling never varies the chosen bits"
            squared = (gradient[row][raises_loss[row]] ** 2)
            order = squared.argsort()
            assert chosen[order[-1]] >= chosen[order[0]]
    assert torch.equal(sampled_flip_mask(model, code, pixels, count=0), torch.zeros_like(code))


@pytest.mark.parametrize("adversarial", ["regularize", "replace", "sampled"])
@pytest.mark.parametrize("estimator", ["rloo", "vimco"])
def test_every_iabf_mode_gives_a_finite_loss_and_trains_encoder_and_decoder(
    adversarial: str, estimator: str
) -> None:
    from noisylink.codecs.jscc.training import iabf_step_loss

    torch.manual_seed(0)
    model = tiny_model(bits=16)
    discriminator = TcDiscriminator(16, hidden=8)
    pixels = torch.rand(8, 20, generator=torch.Generator().manual_seed(1))
    recipe = Recipe(method="iabf", eps=0.2, bits=16, adversarial=adversarial,  # type: ignore[arg-type]
                    estimator=estimator)  # type: ignore[arg-type]
    loss, code = iabf_step_loss(model, discriminator, pixels, recipe)
    assert torch.isfinite(loss)
    assert code.shape == (8, 16) and set(code.unique().tolist()) <= {0.0, 1.0}
    loss.backward()
    for part in (model.encoder, model.decoder):
        gradients = [p.grad for p in part.parameters()]
        assert all(g is not None and torch.isfinite(g).all() for g in gradients)
        assert any(float(g.abs().sum()) > 0 for g in gradients if g is not None)


def test_shuffle_permutes_each_bit_across_the_batch_independently() -> None:
    codes = torch.arange(64 * 10, dtype=torch.float32).reshape(64, 10)
    shuffled = shuffle_bits(codes, torch.Generator().manual_seed(4))
    orders = []
    for column in range(10):
        assert torch.equal(shuffled[:, column].sort().values, codes[:, column])
        orders.append(tuple(((shuffled[:, column] - column) / 10).long().tolist()))
    assert len(set(orders)) == 10, "columns must get different permutations"
    assert all(order != tuple(range(64)) for order in orders)
    # rows of the shuffled batch are not rows of the original: the joint is broken
    original_rows = {tuple(row) for row in codes.tolist()}
    assert sum(tuple(row) in original_rows for row in shuffled.tolist()) < 5


def test_bitwise_information_counts_informative_bits() -> None:
    # bit 0 copies a fair coin per image (1 bit = ln 2 nats); bit 1 is the same for all images
    logits = torch.tensor([[30.0, 30.0], [-30.0, 30.0]] * 8)
    torch.testing.assert_close(bitwise_information(logits), torch.tensor(float(np.log(2.0))),
                               atol=1e-4, rtol=0)


def test_score_function_surrogates_estimate_the_gradient_of_their_objective() -> None:
    # One Bernoulli bit, f(1) = 1, f(0) = 0: d/dθ E[f] = σ'(θ); RLOO averages to it exactly.
    theta = torch.tensor(0.3, requires_grad=True)
    generator = torch.Generator().manual_seed(5)
    p = torch.sigmoid(theta)
    codes = torch.bernoulli(p.detach().expand(5, 20_000), generator=generator)
    log_q = codes * torch.log(p) + (1 - codes) * torch.log1p(-p)
    surrogate = score_function_surrogate(codes.clone(), log_q, "rloo").mean()
    (gradient,) = torch.autograd.grad(surrogate, theta)
    expected = float(p.detach() * (1 - p.detach()))
    assert abs(float(gradient) - expected) < 0.01
    vimco = score_function_surrogate(codes.clone(), log_q, "vimco")
    assert torch.isfinite(vimco).all()


def synthetic_digits(count: int, seed: int) -> np.ndarray:
    """Noisy copies of four fixed 784-pixel patterns, in [0, 1]."""
    rng = np.random.default_rng(seed)
    prototypes = np.random.default_rng(99).random((4, 784)) > 0.7
    picks = prototypes[rng.integers(0, 4, count)].astype(np.float32)
    return np.clip(picks * 0.9 + rng.random((count, 784)).astype(np.float32) * 0.1, 0, 1)


@pytest.mark.slow
@pytest.mark.parametrize("method", ["necst", "iabf"])
def test_a_small_model_trains_and_its_validation_loss_falls(method: str, tmp_path: Path) -> None:
    split = MnistSplit(train=synthetic_digits(400, 1), validation=synthetic_digits(200, 2),
                       test=synthetic_digits(200, 3))
    recipe = Recipe(method=method, eps=0.1, bits=16, epochs=8, patience=10, info_weight=0.01)  # type: ignore[arg-type]
    report = train_jscc(recipe, split, tmp_path / "model", log=lambda _: None)
    history = report.validation_history
    assert len(history) == 8
    assert history[-1] < 0.85 * history[0], history
    saved = load_model(tmp_path / "model")
    assert saved.shape.bits == 16
    # the saved (fp16) model is the best epoch's, and scores like it
    score = l2_distortion(saved, split.validation, 0.1, seed=recipe.seed)
    assert abs(score - report.best_validation_l2) < 0.05 * report.best_validation_l2


def test_discriminator_learns_to_tell_correlated_codes_from_shuffled() -> None:
    from noisylink.codecs.jscc.training import discriminator_loss

    torch.manual_seed(0)
    generator = torch.Generator().manual_seed(6)
    critic = TcDiscriminator(8, hidden=32)
    optimizer = torch.optim.Adam(critic.parameters(), lr=1e-2)
    first = None
    for _ in range(150):
        base = torch.bernoulli(torch.full((128, 1), 0.5), generator=generator)
        codes = base.expand(-1, 8).clone()  # all bits equal: total correlation 7 ln 2
        loss = discriminator_loss(critic, codes, generator)
        first = float(loss.detach()) if first is None else first
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    assert float(loss.detach()) < 0.5 * first
    estimate = float(critic(codes).mean().detach())
    assert estimate > 1.0  # mean logit on codes: a positive TC estimate


def test_recipe_rejects_bad_settings() -> None:
    with pytest.raises(NoisylinkError, match="method"):
        Recipe(method="vae", eps=0.1)  # type: ignore[arg-type]
    with pytest.raises(NoisylinkError, match="eps"):
        Recipe(method="necst", eps=0.5)
    with pytest.raises(NoisylinkError, match="adversarial_weight"):
        Recipe(method="iabf", eps=0.1, adversarial_weight=-0.1)
    with pytest.raises(NoisylinkError, match="info_weight"):
        Recipe(method="iabf", eps=0.1, info_weight=-1e-3)


def test_iabf_with_both_weights_zero_is_the_necst_objective() -> None:
    from noisylink.codecs.jscc.training import iabf_step_loss, necst_step_loss

    model = tiny_model(bits=16)
    pixels = torch.rand(8, 20, generator=torch.Generator().manual_seed(1))
    iabf = Recipe(method="iabf", eps=0.2, bits=16, info_weight=0.0, adversarial_weight=0.0)
    necst = Recipe(method="necst", eps=0.2, bits=16)
    critic = TcDiscriminator(16, hidden=8)
    torch.manual_seed(3)
    iabf_loss, _ = iabf_step_loss(model, critic, pixels, iabf)
    torch.manual_seed(3)
    necst_loss = necst_step_loss(model, pixels, necst)
    assert torch.allclose(iabf_loss, necst_loss)


def test_load_mnist_errors_are_one_line(tmp_path: Path) -> None:
    with pytest.raises(NoisylinkError, match="no such file"):
        load_mnist(tmp_path / "missing.npz")
    bad = tmp_path / "bad.npz"
    np.savez(bad, something=np.zeros(3))
    with pytest.raises(NoisylinkError, match="not a keras-layout"):
        load_mnist(bad)


# --- link codecs ------------------------------------------------------------------------------


def digit_like(seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    image = np.zeros((28, 28, 1), dtype=np.uint8)
    image[6:22, 12:16] = 255
    image[rng.integers(0, 28, 20), rng.integers(0, 28, 20)] = 128
    return image


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("eps", BUNDLED_EPS)
def test_every_bundled_model_is_present_and_loads(method: str, eps: float) -> None:
    model = load_model(model_dir("bundled", method, eps))
    assert model.shape == JsccShape()


@pytest.mark.parametrize("name", ["necst", "iabf"])
def test_link_codec_sends_100_bits_and_decodes_any_bits(name: str) -> None:
    codec = CODECS.build(CODECS.config({"name": name, "eps": 0.2}))
    encoded = codec.encode(digit_like())
    assert encoded.n_bits == 100 and len(encoded.payload) == 13
    assert encoded.side_info.model == f"{name}-eps0.2"
    assert codec.encode(digit_like()) == encoded, "encoding is repeatable"
    rng = np.random.default_rng(7)
    for length in (0, 1, 5, 13, 40):
        payload = rng.integers(0, 256, length, dtype=np.uint8).tobytes()
        image = codec.decode(payload, 8 * length, encoded.side_info)
        assert image.shape == (28, 28, 1) and image.dtype == np.uint8


def test_link_codec_decodes_what_the_model_decodes() -> None:
    codec = CODECS.build(CODECS.config({"name": "necst", "eps": 0.1, "sampling": "mode"}))
    encoded = codec.encode(digit_like())
    model = load_model(model_dir("bundled", "necst", 0.1))
    pixels = torch.from_numpy(digit_like().reshape(1, -1).astype(np.float32) / 255)
    bits = (torch.sigmoid(model.logits(pixels)) > 0.5).float()
    expected = np.rint(model.decode(bits)[0].numpy() * 255).astype(np.uint8)
    decoded = codec.decode(encoded.payload, encoded.n_bits, encoded.side_info)
    np.testing.assert_array_equal(decoded[:, :, 0].ravel(), expected)


def test_link_codec_rejects_other_image_shapes_and_unknown_eps() -> None:
    codec = CODECS.build(CODECS.config({"name": "iabf", "eps": 0.1}))
    with pytest.raises(LinkError, match="28x28 gray"):
        codec.encode(np.zeros((32, 32, 3), dtype=np.uint8))
    with pytest.raises(NoisylinkError, match=r"no bundled model for eps=0\.15"):
        CODECS.config({"name": "iabf", "eps": 0.15})


def test_link_codec_reads_models_from_a_folder(tmp_path: Path) -> None:
    model = JsccModel(JsccShape(bits=24))
    save_model(model, Recipe(method="necst", eps=0.15, bits=24), tmp_path / "necst-eps0.15")
    codec = CODECS.build(CODECS.config({"name": "necst", "eps": 0.15, "weights": str(tmp_path)}))
    encoded = codec.encode(digit_like())
    assert encoded.n_bits == 24 and len(encoded.payload) == 3
    missing = CODECS.build(CODECS.config({"name": "iabf", "eps": 0.15, "weights": str(tmp_path)}))
    with pytest.raises(LinkError, match="no trained model"):
        missing.encode(digit_like())


def test_iabf_comparison_per_eps() -> None:
    scores = [JsccScore("necst", 0.1, 14.0), JsccScore("iabf", 0.1, 13.0),
              JsccScore("necst", 0.2, 20.0), JsccScore("iabf", 0.2, 21.0)]
    assert iabf_at_or_below_necst(scores) == {0.1: True, 0.2: False}
    assert scores[0].paper == PAPER_L2[("necst", 0.1)]
    assert abs(scores[1].relative_gap - (13.0 - 13.251) / 13.251) < 1e-12  # type: ignore[operator]


# --- with MNIST -------------------------------------------------------------------------------


@needs_mnist
def test_mnist_split_is_the_spec_split() -> None:
    split = load_mnist(MNIST)
    assert split.train.shape == (50_000, 784) and split.validation.shape == (10_000, 784)
    assert split.test.shape == (10_000, 784)
    assert split.train.min() >= 0.0 and split.train.max() <= 1.0


@needs_mnist
def test_bundled_digits_are_the_first_mnist_test_digits() -> None:
    from noisylink.images import bundled_digits

    with np.load(MNIST) as data:
        np.testing.assert_array_equal(bundled_digits(), data["x_test"][: len(bundled_digits())])


# --- through the link and the command line ---------------------------------------------------


def test_jscc_codecs_on_a_bsc_through_the_link(tmp_path: Path) -> None:
    from noisylink.link.runner import run_scenario
    from noisylink.results.file import read_rows
    from noisylink.scenarios import parse_scenario

    scenario = parse_scenario({
        "name": "jscc", "seed": 1, "images": {"source": "digits", "limit": 3, "color": "gray"},
        "codec": [{"name": "necst", "eps": 0.1}, {"name": "iabf", "eps": 0.4}],
        "channel": {"name": "bsc", "ber": [0.0, 0.3]}, "trials": 2,
    }, "test")
    rows = read_rows(run_scenario(scenario, tmp_path / "out").results_path)
    assert len(rows) == 2 * 2 * 3 * 2
    assert all(row["decoded"] == "true" for row in rows)
    assert {row["source_bits"] for row in rows} == {"100"}
    clean = [float(r["mse"]) for r in rows if r["channel_value"] == "0.0"]
    noisy = [float(r["mse"]) for r in rows if r["channel_value"] == "0.3"]
    assert 0 < np.mean(clean) < np.mean(noisy)
    assert all(float(r["raw_ber"]) > 0.1 for r in rows if r["channel_value"] == "0.3")


def test_digits_source_gives_28x28_gray() -> None:
    from noisylink.images import load_images
    from noisylink.scenarios.schema import ImagesSpec

    images = load_images(ImagesSpec(source="digits", limit=5))
    assert [image.name for image in images][:2] == ["digit-000", "digit-001"]
    assert all(image.pixels.shape == (28, 28, 1) for image in images)


def fake_mnist(path: Path) -> Path:
    rng = np.random.default_rng(0)
    np.savez(path, x_train=np.zeros((60_000, 28, 28), np.uint8),
             y_train=np.zeros(60_000, np.uint8),
             x_test=rng.integers(0, 256, (50, 28, 28), dtype=np.uint8),
             y_test=np.arange(50, dtype=np.uint8) % 10)
    return path


def test_eval_jscc_prints_csv_then_the_table(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from noisylink.cli import app

    result = CliRunner().invoke(app, ["eval-jscc", "--data", str(fake_mnist(tmp_path / "m.npz"))])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0] == "method,eps,l2"
    rows = [line.split(",") for line in lines[1:9]]
    assert [(m, e) for m, e, _ in rows] == [(m, f"{e:g}") for m in METHODS for e in BUNDLED_EPS]
    assert all(float(value) > 0 for _, _, value in rows)
    assert "paper" in result.output and "48.291" in result.output


def test_jscc_commands_fail_in_one_line(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from noisylink.cli import app

    runner = CliRunner()
    missing = runner.invoke(app, ["eval-jscc", "--data", str(tmp_path / "none.npz")])
    assert missing.exit_code == 2 and "no such file" in missing.output
    bad = runner.invoke(app, ["train-jscc", "--method", "vae", "--eps", "0.1",
                              "--data", str(tmp_path / "none.npz")])
    assert bad.exit_code == 2 and "method must be necst or iabf" in bad.output
    assert "Traceback" not in missing.output + bad.output


def test_export_digits_writes_the_first_test_digits(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from noisylink.cli import app

    data = fake_mnist(tmp_path / "m.npz")
    out = tmp_path / "digits.npz"
    result = CliRunner().invoke(app, ["export-digits", "--data", str(data), "--count", "7",
                                      "--out", str(out)])
    assert result.exit_code == 0, result.output
    with np.load(out) as written, np.load(data) as mnist:
        np.testing.assert_array_equal(written["digits"], mnist["x_test"][:7])
        np.testing.assert_array_equal(written["labels"], mnist["y_test"][:7])


@needs_mnist
def test_bundled_models_score_near_the_paper_on_mnist_test_digits() -> None:
    from noisylink.codecs.jscc.evaluation import evaluate_models

    test = load_mnist(MNIST).test[:2000]  # a fifth of the test set: a quick, noisier check
    for score in evaluate_models("bundled", test):
        assert score.relative_gap is not None
        assert abs(score.relative_gap) < 0.15, (score.method, score.eps, score.l2)
        assert score.train_minutes is not None and score.epoch is not None


# --- weights folders that are damaged, of another model, or absurd --------------------------


def saved_model_folder(root: Path, bits: int = 24) -> Path:
    folder = root / "necst-eps0.15"
    save_model(JsccModel(JsccShape(bits=bits)), Recipe(method="necst", eps=0.15, bits=bits),
               folder)
    return folder


def refused(folder: Path, match: str) -> str:
    """The one-line error loading ``folder`` gives, checked to name the file at fault."""
    load_model.cache_clear()
    with pytest.raises(LinkError, match=match) as info:
        load_model(folder)
    message = str(info.value)
    assert "\n" not in message and str(folder) in message
    return message


def test_truncated_weights_are_one_line_naming_the_file(tmp_path: Path) -> None:
    folder = saved_model_folder(tmp_path)
    weights = folder / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:-100])
    assert "model.safetensors" in refused(folder, "truncated")
    weights.write_bytes(b"\x10\x00")
    refused(folder, "too short")


def test_weights_of_another_shape_are_refused(tmp_path: Path) -> None:
    folder = saved_model_folder(tmp_path, bits=24)
    description = json.loads((folder / "config.json").read_text())
    description["shape"]["bits"] = 32  # the file holds a 24-bit model
    (folder / "config.json").write_text(json.dumps(description))
    refused(folder, r"'encoder.2.weight' has shape \[24, 500\], the model expects \[32, 500\]")


def test_weights_missing_a_tensor_are_refused(tmp_path: Path) -> None:
    from safetensors.torch import save_file

    folder = saved_model_folder(tmp_path)
    state = {k: v.half().contiguous() for k, v in JsccModel(JsccShape(bits=24)).state_dict().items()
             if k != "decoder.4.bias"}
    save_file(state, str(folder / "model.safetensors"))
    refused(folder, "missing tensors decoder.4.bias")


def test_weights_with_an_extra_tensor_or_integer_dtype_are_refused(tmp_path: Path) -> None:
    from safetensors.torch import save_file

    folder = saved_model_folder(tmp_path)
    model = JsccModel(JsccShape(bits=24))
    state = {k: v.half().contiguous() for k, v in model.state_dict().items()}
    save_file(state | {"extra": torch.zeros(2)}, str(folder / "model.safetensors"))
    refused(folder, "unexpected tensors extra")
    state["decoder.4.bias"] = state["decoder.4.bias"].to(torch.int16)
    save_file(state, str(folder / "model.safetensors"))
    refused(folder, "not a float type")


def test_a_header_declaring_an_absurd_tensor_is_refused_before_allocating(tmp_path: Path) -> None:
    folder = saved_model_folder(tmp_path)
    # 10^6 x 10^6 float32 = 4 TB declared in a file of a few hundred bytes
    header = {"encoder.0.weight": {"dtype": "F32", "shape": [10**6, 10**6],
                                   "data_offsets": [0, 4 * 10**12]}}
    text = json.dumps(header).encode()
    (folder / "model.safetensors").write_bytes(len(text).to_bytes(8, "little") + text + b"\0" * 64)
    refused(folder, "truncated")
    # a header length of its own that is absurd
    (folder / "model.safetensors").write_bytes((1 << 62).to_bytes(8, "little") + b"{}")
    refused(folder, "header declares")


def test_a_description_declaring_an_absurd_shape_is_refused_before_allocating(
    tmp_path: Path,
) -> None:
    # hidden = 10^7 would make a 784 x 10^7 float32 layer: the 31 GB allocation of issue 12
    folder = saved_model_folder(tmp_path)
    description = json.loads((folder / "config.json").read_text())
    for shape, match in (({"hidden": 10**7}, "parameters, more than"),
                         ({"bits": 0}, "positive integer"), ({"bits": True}, "positive integer"),
                         ({"bits": "100"}, "positive integer")):
        (folder / "config.json").write_text(
            json.dumps(description | {"shape": description["shape"] | shape}))
        refused(folder, match)
        codec = CODECS.build(CODECS.config({"name": "necst", "eps": 0.15,
                                            "weights": str(tmp_path)}))
        with pytest.raises(LinkError, match=match):
            codec.encode(digit_like())


def test_run_with_damaged_weights_is_one_line_and_exit_2(tmp_path: Path) -> None:
    import yaml
    from typer.testing import CliRunner

    from noisylink.cli import app

    weights = saved_model_folder(tmp_path / "models") / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:1000])
    scenario = tmp_path / "jscc.yaml"
    scenario.write_text(yaml.safe_dump({
        "name": "bad-weights", "images": {"source": "digits", "limit": 1},
        "codec": {"name": "necst", "eps": 0.15, "weights": str(tmp_path / "models")},
        "channel": {"name": "bsc", "ber": 0.1},
    }))
    result = CliRunner().invoke(app, ["run", str(scenario), "--out", str(tmp_path / "out")])
    assert result.exit_code == 2, result.output
    assert result.output.startswith("error: ") and result.output.count("\n") == 1
    assert str(weights) in result.output and "Traceback" not in result.output
