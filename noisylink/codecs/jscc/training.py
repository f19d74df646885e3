"""Training NECST and IABF (spec: ``specs/jscc.md``).

Both train the same model by maximising log p(x | y) of the image given a noisy code y:

- NECST draws y from the code distribution with the channel folded in,
  P(y_d = 1) = σ(ℓ_d)(1 − 2ε) + ε.
- IABF adds adversarial bit flips: round(ε·m) bits chosen from ∂loss/∂y, among those whose
  flip raises the loss (``Recipe.adversarial`` says how they enter the objective). It also
  maximises λ·(Σ_d [H(Y_d) − H(Y_d|X)] − TC), where a small discriminator between codes and
  per-bit shuffled codes estimates the total correlation TC.

Gradients reach the encoder through the discrete bits by a multi-sample score-function
estimator: VIMCO (the papers' choice) or RLOO, the leave-one-out REINFORCE estimator of the
plain expectation (see ``Recipe.estimator``).
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Literal

import numpy as np
import torch
from numpy.typing import NDArray
from torch import nn
from torch.nn import functional

from noisylink.codecs.jscc.model import JsccModel, JsccShape, code_probability, sample_bsc
from noisylink.errors import NoisylinkError

Method = Literal["necst", "iabf"]
Estimator = Literal["vimco", "rloo"]
Adversarial = Literal["regularize", "replace", "sampled"]


@dataclass(frozen=True)
class Recipe:
    """Everything that defines one training run (stored beside the weights)."""

    method: Method
    eps: float
    bits: int = 100
    epochs: int = 200
    batch: int = 100
    lr: float = 1e-3
    samples: int = 5
    estimator: Estimator = "vimco"
    info_weight: float = 0.001  # IABF's λ
    adversarial: Adversarial = "regularize"  # IABF: regularize, replace or sampled (see
    # ``iabf_step_loss``)
    adversarial_weight: float = 0.1  # IABF with ``regularize``: weight of the adversarial term
    patience: int = 20  # epochs without a better validation loss before stopping
    seed: int = 0

    def __post_init__(self) -> None:
        if self.method not in ("necst", "iabf"):
            raise NoisylinkError(f"method must be necst or iabf, got {self.method!r}")
        if self.estimator not in ("vimco", "rloo"):
            raise NoisylinkError(f"estimator must be rloo or vimco, got {self.estimator!r}")
        if not 0 < self.eps < 0.5:
            raise NoisylinkError(f"eps must be in (0, 0.5), got {self.eps}")
        if self.adversarial not in ("regularize", "replace", "sampled"):
            raise NoisylinkError(
                f"adversarial must be regularize, replace or sampled, got {self.adversarial!r}"
            )
        for field in ("info_weight", "adversarial_weight"):
            if getattr(self, field) < 0:
                raise NoisylinkError(f"{field} must be at least 0, got {getattr(self, field)}")
        if self.samples < 2:
            raise NoisylinkError("samples must be at least 2 (leave-one-out baselines)")


@dataclass(frozen=True)
class MnistSplit:
    """The spec's split: 50k train / 10k validation from MNIST train, the 10k test set."""

    train: NDArray[np.float32]
    validation: NDArray[np.float32]
    test: NDArray[np.float32]


def load_mnist(path: Path) -> MnistSplit:
    """Read a keras-layout ``mnist.npz`` as flattened pixels in [0, 1]."""
    try:
        with np.load(path) as data:
            train = data["x_train"].reshape(-1, 784).astype(np.float32) / 255.0
            test = data["x_test"].reshape(-1, 784).astype(np.float32) / 255.0
    except FileNotFoundError:
        raise NoisylinkError(f"{path}: no such file (MNIST in keras layout)") from None
    except (OSError, ValueError, KeyError) as exc:
        raise NoisylinkError(f"{path}: not a keras-layout MNIST npz ({exc})") from None
    if len(train) < 60_000:
        raise NoisylinkError(f"{path}: x_train has {len(train)} digits, the split needs 60000")
    return MnistSplit(train=train[:50_000], validation=train[50_000:60_000], test=test)


def reconstruction_loss(pixel_logits: torch.Tensor, pixels: torch.Tensor) -> torch.Tensor:
    """−log p(x | y) per image up to constants: the sum of squared errors of the pixel means.

    A Gaussian likelihood with variance 1/2 around the decoder's sigmoid output, as NECST uses
    for gray-level MNIST; it is also the evaluation metric.
    """
    return ((torch.sigmoid(pixel_logits) - pixels) ** 2).sum(-1)


def log_code_probability(codes: torch.Tensor, probability: torch.Tensor) -> torch.Tensor:
    """log q(y | x) of codes ``[S, B, m]`` under independent bits with P(1) = probability."""
    p = probability.clamp(1e-6, 1 - 1e-6)
    return (codes * torch.log(p) + (1 - codes) * torch.log1p(-p)).sum(-1)


def score_function_surrogate(
    log_likelihood: torch.Tensor, log_q: torch.Tensor, estimator: Estimator
) -> torch.Tensor:
    """A per-image surrogate whose gradient estimates the objective's (samples on dim 0).

    Its value is the objective itself: log-mean-exp of the samples' log-likelihoods for
    VIMCO, their mean for RLOO. Each sample's score term is weighted by its leave-one-out
    advantage.
    """
    samples = log_likelihood.shape[0]
    others_mean = (log_likelihood.sum(0, keepdim=True) - log_likelihood) / (samples - 1)
    if estimator == "vimco":
        objective = torch.logsumexp(log_likelihood, 0) - math.log(samples)
        eye = torch.eye(samples, dtype=torch.bool, device=log_likelihood.device)
        replaced = torch.where(
            eye[:, :, None], others_mean[None, :, :].expand(samples, -1, -1),
            log_likelihood[None, :, :].expand(samples, -1, -1),
        )  # [k, j, B]: sample k's f replaced by the mean of the others
        baseline = torch.logsumexp(replaced, 1) - math.log(samples)
        advantage = objective.detach()[None] - baseline.detach()
    else:
        objective = log_likelihood.mean(0)
        advantage = (log_likelihood - others_mean).detach() / samples
    return objective + (advantage * log_q).sum(0)


def adversarial_flips(
    model: JsccModel, codes: torch.Tensor, pixels: torch.Tensor, count: int
) -> torch.Tensor:
    """Flip up to ``count`` bits per code, those whose flip raises the loss most.

    A bit is a candidate only if flipping it raises the loss to first order: y = 0 with
    ∂loss/∂y > 0, or y = 1 with ∂loss/∂y < 0. Returns the flipped codes (no gradient).
    """
    if count <= 0:
        return codes.detach()
    probe = codes.detach().clone().requires_grad_(True)
    with torch.enable_grad():
        loss = reconstruction_loss(model.decode_logits(probe), pixels).sum()
        (gradient,) = torch.autograd.grad(loss, probe)
    gain = torch.where(probe.detach() > 0.5, -gradient, gradient)  # first-order loss increase
    gain = torch.where(gain > 0, gain, torch.zeros_like(gain))
    top = torch.topk(gain, min(count, gain.shape[-1]), dim=-1)
    flip = torch.zeros_like(gain, dtype=torch.bool)
    flip.scatter_(-1, top.indices, top.values > 0)
    return torch.where(flip, 1.0 - codes.detach(), codes.detach())


def sampled_flip_mask(
    model: JsccModel, code: torch.Tensor, pixels: torch.Tensor, count: int
) -> torch.Tensor:
    """Choose ``count`` bits of each code to flip, at random with P ∝ softmax(g²) (no gradient).

    g = ∂loss/∂c is taken on the clean hard code c. The bits are drawn without replacement
    (Gumbel top-k) among those whose flip raises the loss to first order, so the adversary
    favours the sensitive bits without always flipping the same ones. Returns a 0/1 float mask.
    """
    if count <= 0:
        return torch.zeros_like(code)
    probe = code.detach().clone().requires_grad_(True)
    with torch.enable_grad():
        loss = reconstruction_loss(model.decode_logits(probe), pixels).sum()
        (gradient,) = torch.autograd.grad(loss, probe)
    raises = torch.where(probe.detach() > 0.5, gradient < 0, gradient > 0)
    uniform = torch.rand(gradient.shape, device=gradient.device).clamp(1e-12, 1 - 1e-12)
    scores = torch.log_softmax(gradient**2, dim=-1) - torch.log(-torch.log(uniform))
    scores = torch.where(raises, scores, torch.full_like(scores, -math.inf))
    top = torch.topk(scores, min(count, scores.shape[-1]), dim=-1)
    mask = torch.zeros_like(code)
    mask.scatter_(-1, top.indices, torch.isfinite(top.values).to(code.dtype))
    return mask


def shuffle_bits(codes: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """Permute each bit (column) independently across the batch (rows)."""
    keys = torch.rand(codes.shape, generator=generator, device=codes.device)
    order = keys.argsort(dim=0)
    return torch.gather(codes, 0, order)


def binary_entropy(p: torch.Tensor) -> torch.Tensor:
    p = p.clamp(1e-6, 1 - 1e-6)
    return -(p * torch.log(p) + (1 - p) * torch.log1p(-p))


def bitwise_information(logits: torch.Tensor) -> torch.Tensor:
    """Σ_d [H(Y_d) − H(Y_d | X)] over a batch, in nats (Y_d ~ Bernoulli(σ(ℓ_d)))."""
    p = torch.sigmoid(logits)
    return (binary_entropy(p.mean(0)) - binary_entropy(p).mean(0)).sum()


class TcDiscriminator(nn.Module):
    """Tells codes from per-bit shuffled codes; its mean logit on codes estimates TC."""

    def __init__(self, bits: int, hidden: int = 200):
        super().__init__()
        self.net = nn.Sequential(
            nn.Linear(bits, hidden), nn.LeakyReLU(0.2),
            nn.Linear(hidden, hidden), nn.LeakyReLU(0.2),
            nn.Linear(hidden, 1),
        )

    def forward(self, codes: torch.Tensor) -> torch.Tensor:
        return self.net(codes).squeeze(-1)


def necst_step_loss(
    model: JsccModel, pixels: torch.Tensor, recipe: Recipe, logits: torch.Tensor | None = None
) -> torch.Tensor:
    """The negative surrogate objective for one NECST batch (its value is not the SSE)."""
    logits = model.logits(pixels) if logits is None else logits
    probability = code_probability(logits, recipe.eps)
    codes = torch.bernoulli(probability.detach().expand(recipe.samples, -1, -1))
    log_likelihood = -reconstruction_loss(model.decode_logits(codes), pixels)
    log_q = log_code_probability(codes, probability)
    return -score_function_surrogate(log_likelihood, log_q, recipe.estimator).mean()


def iabf_step_loss(
    model: JsccModel, discriminator: TcDiscriminator, pixels: torch.Tensor, recipe: Recipe
) -> tuple[torch.Tensor, torch.Tensor]:
    """The negative IABF objective for one batch, and one code sample (for the critic).

    ``adversarial: regularize`` (default) keeps NECST's random-flip objective and adds the
    decoder's squared error on adversarially flipped codes, weighted by ``adversarial_weight``
    (gradient to the decoder only: the paper regularises the decoder adversarially and the
    encoder with the infomax term). The two others train on adversarial flips instead of the
    channel's random ones: ``replace`` flips the round(ε·m) bits of largest first-order gain in
    each sampled code; ``sampled`` draws them at random with P ∝ softmax(g²) from a clean code
    (``sampled_flip_mask``) and folds that mask into the code distribution.
    """
    logits = model.logits(pixels)
    probability = torch.sigmoid(logits)
    flip_count = round(recipe.eps * recipe.bits)
    if recipe.adversarial == "sampled":
        code = torch.bernoulli(probability.detach())
        mask = sampled_flip_mask(model, code, pixels, flip_count)
        flipped_probability = probability + mask * (1.0 - 2.0 * probability)
        codes = torch.bernoulli(flipped_probability.detach().expand(recipe.samples, -1, -1))
        log_likelihood = -reconstruction_loss(model.decode_logits(codes), pixels)
        log_q = log_code_probability(codes, flipped_probability)
        objective = score_function_surrogate(log_likelihood, log_q, recipe.estimator).mean()
    elif recipe.adversarial == "replace":
        codes = torch.bernoulli(probability.detach().expand(recipe.samples, -1, -1))
        flipped = adversarial_flips(model, codes, pixels, flip_count)
        log_likelihood = -reconstruction_loss(model.decode_logits(flipped), pixels)
        log_q = log_code_probability(codes, probability)
        objective = score_function_surrogate(log_likelihood, log_q, recipe.estimator).mean()
        code = codes[0]
    else:
        objective = -necst_step_loss(model, pixels, recipe, logits)
        code = torch.bernoulli(probability.detach())
        if recipe.adversarial_weight > 0:  # weight 0: the infomax term alone
            flipped = adversarial_flips(model, code, pixels, flip_count)
            adversarial_error = reconstruction_loss(model.decode_logits(flipped), pixels).mean()
            objective = objective - recipe.adversarial_weight * adversarial_error
    straight_through = code + probability - probability.detach()
    total_correlation = discriminator(straight_through).mean()
    information = bitwise_information(logits) - total_correlation
    return -(objective + recipe.info_weight * information), code


def discriminator_loss(
    discriminator: TcDiscriminator, codes: torch.Tensor, generator: torch.Generator
) -> torch.Tensor:
    """Logistic loss of telling codes (label 1) from per-bit shuffled codes (label 0)."""
    real = discriminator(codes.detach())
    fake = discriminator(shuffle_bits(codes.detach(), generator))
    return (functional.binary_cross_entropy_with_logits(real, torch.ones_like(real))
            + functional.binary_cross_entropy_with_logits(fake, torch.zeros_like(fake)))


@torch.no_grad()
def l2_distortion(
    model: JsccModel, pixels: NDArray[np.float32], eps: float, seed: int = 0, batch: int = 1000
) -> float:
    """The paper's metric: mean per-image sum of squared error over the pixels in [0, 1].

    Bits are sampled once per image from Bernoulli(σ(ℓ)), then flipped by BSC(ε).
    """
    generator = torch.Generator().manual_seed(seed)
    total = 0.0
    for start in range(0, len(pixels), batch):
        x = torch.from_numpy(pixels[start : start + batch])
        bits = torch.bernoulli(torch.sigmoid(model.logits(x)), generator=generator)
        received = sample_bsc(bits, eps, generator)
        total += float(((model.decode(received) - x) ** 2).sum())
    return total / len(pixels)


@dataclass(frozen=True)
class TrainingReport:
    best_epoch: int
    epochs_run: int
    best_validation_l2: float
    seconds: float
    validation_history: tuple[float, ...] = ()


def train_jscc(
    recipe: Recipe,
    data: MnistSplit,
    out_dir: Path,
    max_minutes: float | None = None,
    log: Callable[[str], None] = print,
) -> TrainingReport:
    """Train one model; keep (and write to ``out_dir``) the one with the best validation L2."""
    torch.manual_seed(recipe.seed)
    generator = torch.Generator().manual_seed(recipe.seed + 1)
    model = JsccModel(JsccShape(bits=recipe.bits))
    optimizer = torch.optim.Adam(model.parameters(), lr=recipe.lr)
    discriminator = TcDiscriminator(recipe.bits)
    critic_optimizer = torch.optim.Adam(discriminator.parameters(), lr=recipe.lr)
    train = torch.from_numpy(data.train)
    started = time.perf_counter()
    best = (math.inf, -1)
    history: list[float] = []
    epoch = 0
    for epoch in range(1, recipe.epochs + 1):
        order = torch.randperm(len(train), generator=generator)
        running = 0.0
        for start in range(0, len(train), recipe.batch):
            pixels = train[order[start : start + recipe.batch]]
            if recipe.method == "necst":
                loss = necst_step_loss(model, pixels, recipe)
            else:
                loss, codes = iabf_step_loss(model, discriminator, pixels, recipe)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            if recipe.method == "iabf":
                critic_optimizer.zero_grad(set_to_none=True)
                discriminator_loss(discriminator, codes, generator).backward()
                critic_optimizer.step()
            running += float(loss.detach())
        validation = l2_distortion(model, data.validation, recipe.eps, seed=recipe.seed)
        history.append(validation)
        elapsed = time.perf_counter() - started
        log(f"{recipe.method} eps={recipe.eps} epoch {epoch}: surrogate loss "
            f"{running / math.ceil(len(train) / recipe.batch):.2f}, validation L2 "
            f"{validation:.3f} ({elapsed:.0f} s)")
        if validation < best[0]:
            best = (validation, epoch)
            save_model(model, recipe, out_dir, validation_l2=validation, epoch=epoch,
                       train_seconds=round(elapsed, 1))
        if epoch - best[1] >= recipe.patience:
            break
        if max_minutes is not None and elapsed > 60 * max_minutes:
            break
    return TrainingReport(best[1], epoch, best[0], time.perf_counter() - started, tuple(history))


def save_model(model: JsccModel, recipe: Recipe, out_dir: Path, **facts: float) -> None:
    """Write fp16 safetensors and a JSON description (shape, recipe, facts)."""
    from safetensors.torch import save_file

    out_dir.mkdir(parents=True, exist_ok=True)
    state = {key: value.detach().to(torch.float16).contiguous()
             for key, value in model.state_dict().items()}
    save_file(state, str(out_dir / "model.safetensors"))
    description = {"shape": model.shape.to_json(), "recipe": asdict(recipe), **facts}
    (out_dir / "config.json").write_text(json.dumps(description, indent=2) + "\n")
