"""Diffusion backbones for the reverse-channel-coding codecs, pixel-space or latent, behind one API.

The codecs only need a noise schedule, the model's raw prediction at an integer timestep and a
way in and out of the space the sampler runs in. ``PixelBackbone`` wraps a diffusers
``UNet2DModel`` (the sample is the image in [-1, 1]); ``LatentBackbone`` wraps Stable Diffusion
(the sample is the scaled VAE latent, the UNet is fed the empty-prompt embedding, no guidance).
``load_backbone`` finds a model by name (the bundled prior, whose folder the registry of bundled
weights gives, ``noisylink.weights``; a local folder; or a cached hub id), loads it with the real
diffusers/transformers loaders and never downloads anything.

Only safetensors weights are read (``use_safetensors=True``: no pickle). Before a model is
built (diffusers allocates the whole model first when ``accelerate`` is absent; transformers
allocates the weights its file lacks), each ``config.json`` is checked against its weights:
depth settings are bounded, the model it describes is built on torch's meta device (no memory)
and must not have more parameters than its safetensors files hold (their headers checked
against their sizes), and the scheduler's ``num_train_timesteps`` is bounded. A config
declaring absurd sizes is a one-line error.

Importing this module is cheap: diffusers and transformers are imported only when loading.
"""

from __future__ import annotations

import json
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Literal

import torch

from noisylink.codecs.devices import resolve_torch_device
from noisylink.errors import NoisylinkError
from noisylink.safeload import read_safetensors_header
from noisylink.weights import bundled_weights

if TYPE_CHECKING:
    from diffusers import AutoencoderKL, DDPMScheduler, UNet2DConditionModel, UNet2DModel

BUNDLED_PRIOR = "bsds-ddpm"
"""The registry name of what ``model: bundled`` means: the project's own small pixel-space prior
(diffusers layout: ``unet/`` and ``scheduler/``)."""

PREDICTION_TYPES = ("epsilon", "v_prediction")

MAX_TRAIN_TIMESTEPS = 100_000
MAX_LAYERS_PER_BLOCK = 32
MAX_LEVELS = 16
MAX_HIDDEN_LAYERS = 256
"""Bounds on a model folder's configs (Stable Diffusion uses 1000 timesteps, 2 layers per block,
4 levels and a 23-layer text encoder) that keep even the meta-device build of a model cheap."""

_CACHE: dict[tuple[str, str, torch.dtype], Backbone] = {}


class Backbone(ABC):
    """A diffusion model as the diffusion codecs see it: schedule, prediction, sample space.

    Loaded backbones are cached and shared, so treat them as read-only.
    """

    kind: ClassVar[Literal["pixel", "latent"]]
    clamp_x0: ClassVar[bool]
    alphas_cumprod: torch.Tensor
    train_timesteps: int
    prediction_type: str
    device: torch.device
    dtype: torch.dtype

    def __init__(self, scheduler: DDPMScheduler, device: torch.device, dtype: torch.dtype):
        prediction_type = scheduler.config.prediction_type
        if prediction_type not in PREDICTION_TYPES:
            raise NoisylinkError(
                f"scheduler prediction_type {prediction_type!r} is not supported; "
                f"expected one of {', '.join(PREDICTION_TYPES)}"
            )
        self.prediction_type = prediction_type
        self.train_timesteps = int(scheduler.config.num_train_timesteps)
        # The float32 values the model was trained with, widened for the sampler's arithmetic.
        self.alphas_cumprod = scheduler.alphas_cumprod.detach().to("cpu", torch.float64).clone()
        self.device = device
        self.dtype = dtype

    @property
    @abstractmethod
    def size_multiple(self) -> int:
        """Image height and width must be multiples of this for the model to accept them."""

    @abstractmethod
    def _channels_and_factor(self) -> tuple[int, int]:
        """Channels of the sample and the image-to-sample downscaling factor."""

    def sample_shape(self, height: int, width: int) -> tuple[int, int, int]:
        """(C, h, w) of the sample for an image of ``height`` x ``width`` pixels."""
        multiple = self.size_multiple
        if height <= 0 or width <= 0 or height % multiple or width % multiple:
            raise NoisylinkError(
                f"image size {height}x{width} does not fit this {self.kind} diffusion model: "
                f"height and width must be positive multiples of {multiple}"
            )
        channels, factor = self._channels_and_factor()
        return channels, height // factor, width // factor

    @abstractmethod
    def to_sample(self, images: torch.Tensor) -> torch.Tensor:
        """Images [B, 3, H, W] in [-1, 1] to samples [B, C, h, w] (float32, on ``device``)."""

    @abstractmethod
    def from_sample(self, samples: torch.Tensor) -> torch.Tensor:
        """Samples [B, C, h, w] to images [B, 3, H, W] (float32 in [-1, 1], on ``device``)."""

    @abstractmethod
    def model_output(self, x_t: torch.Tensor, t: int) -> torch.Tensor:
        """The raw prediction (ε or v, see ``prediction_type``) for x_t [B, C, h, w] at step t."""

    def _check_images(self, images: torch.Tensor) -> None:
        """Fail early, with the size rule, on images the model cannot take."""
        if images.ndim != 4:
            raise ValueError(f"expected images shaped [B, C, H, W], got {tuple(images.shape)}")
        self.sample_shape(images.shape[-2], images.shape[-1])

    def _timestep(self, t: int) -> int:
        """``t`` as a plain int, checked against the training range."""
        step = int(t)
        if not 0 <= step < self.train_timesteps:
            raise ValueError(
                f"timestep {step} outside the training range 0..{self.train_timesteps - 1}"
            )
        return step


class PixelBackbone(Backbone):
    """A ``UNet2DModel`` on images in [-1, 1]: sample space is image space."""

    kind = "pixel"
    clamp_x0 = True

    def __init__(self, unet: UNet2DModel, scheduler: DDPMScheduler):
        super().__init__(scheduler, unet.device, unet.dtype)
        self.unet = unet.eval().requires_grad_(False)

    @property
    def size_multiple(self) -> int:
        return 2 ** (len(self.unet.config.down_block_types) - 1)

    def _channels_and_factor(self) -> tuple[int, int]:
        return int(self.unet.config.in_channels), 1

    def to_sample(self, images: torch.Tensor) -> torch.Tensor:
        self._check_images(images)
        return images.to(self.device, torch.float32, copy=True)

    def from_sample(self, samples: torch.Tensor) -> torch.Tensor:
        return samples.to(self.device, torch.float32).clamp(-1.0, 1.0)

    def model_output(self, x_t: torch.Tensor, t: int) -> torch.Tensor:
        step = self._timestep(t)
        with torch.no_grad():
            output = self.unet(x_t.to(self.device, self.dtype), step).sample
        return output.float()


class LatentBackbone(Backbone):
    """Stable Diffusion: VAE latents scaled by ``scaling_factor``, UNet on the empty prompt."""

    kind = "latent"
    clamp_x0 = False

    def __init__(
        self,
        vae: AutoencoderKL,
        unet: UNet2DConditionModel,
        scheduler: DDPMScheduler,
        empty_embedding: torch.Tensor,
    ):
        super().__init__(scheduler, unet.device, unet.dtype)
        if unet.config.addition_embed_type is not None:
            raise NoisylinkError(
                f"the UNet needs extra conditioning ({unet.config.addition_embed_type!r}, as in "
                "SDXL); only Stable Diffusion 1.x/2.x style UNets are supported"
            )
        width = unet.config.cross_attention_dim
        if empty_embedding.ndim != 3 or empty_embedding.shape[-1] != width:
            raise NoisylinkError(
                f"text embedding shaped {tuple(empty_embedding.shape)} does not fit the UNet's "
                f"cross_attention_dim {width}"
            )
        self.vae = vae.eval().requires_grad_(False)
        self.unet = unet.eval().requires_grad_(False)
        self.empty_embedding = empty_embedding.to(self.device, self.dtype)
        self.scaling_factor = float(vae.config.scaling_factor)
        self.vae_factor = 2 ** (len(vae.config.block_out_channels) - 1)

    @property
    def size_multiple(self) -> int:
        return self.vae_factor * 2 ** (len(self.unet.config.down_block_types) - 1)

    def _channels_and_factor(self) -> tuple[int, int]:
        return int(self.vae.config.latent_channels), self.vae_factor

    def to_sample(self, images: torch.Tensor) -> torch.Tensor:
        self._check_images(images)
        with torch.no_grad():
            latents = self.vae.encode(images.to(self.device, self.dtype)).latent_dist.mode()
        return latents.float() * self.scaling_factor

    def from_sample(self, samples: torch.Tensor) -> torch.Tensor:
        latents = samples.to(self.device, torch.float32) / self.scaling_factor
        with torch.no_grad():
            images = self.vae.decode(latents.to(self.dtype)).sample
        return images.float().clamp(-1.0, 1.0)

    def model_output(self, x_t: torch.Tensor, t: int) -> torch.Tensor:
        step = self._timestep(t)
        context = self.empty_embedding.expand(x_t.shape[0], -1, -1)
        with torch.no_grad():
            output = self.unet(
                x_t.to(self.device, self.dtype), step, encoder_hidden_states=context
            ).sample
        return output.float()


def load_backbone(
    model: str | Path, device: str | torch.device = "cpu", dtype: torch.dtype = torch.float32
) -> Backbone:
    """The backbone ``model`` names ("bundled", a local folder or a cached hub id), loaded once.

    Raises ``NoisylinkError("cannot load diffusion model ...: reason")`` on any failure.
    """
    resolved = resolve_torch_device(device)
    key = (str(model), str(resolved), dtype)
    if key not in _CACHE:
        _CACHE[key] = _load(str(model), resolved, dtype)
    return _CACHE[key]


def _load(model: str, device: torch.device, dtype: torch.dtype) -> Backbone:
    """Find and load the model; every failure becomes one NoisylinkError line."""
    try:
        folder = _find_folder(model)
        with _quiet_loaders():
            if (folder / "vae").is_dir():
                return _load_latent(folder, device, dtype)
            return _load_pixel(folder, device, dtype)
    except NoisylinkError as error:
        reason = str(error)
    except Exception as error:
        reason = _describe(error)
    raise NoisylinkError(f"cannot load diffusion model {model!r}: {reason}")


def _find_folder(model: str) -> Path:
    """The local folder holding the model's files."""
    if model == "bundled":
        folder = bundled_weights(BUNDLED_PRIOR).folder
        if not folder.is_dir():
            raise NoisylinkError(f"the bundled prior is not installed (expected {folder})")
        return folder
    path = Path(model).expanduser()
    if path.is_dir():
        return path
    if path.exists():
        raise NoisylinkError(f"{path} is a file, not a model folder")
    if _looks_like_path(model):
        raise NoisylinkError(f"folder not found: {path}")
    from huggingface_hub import snapshot_download

    try:
        return Path(snapshot_download(model, local_files_only=True))
    except Exception:
        raise NoisylinkError(
            "not a local folder and not in the local Hugging Face cache (nothing is downloaded; "
            "fetch it into the cache where there is internet, or give a folder)"
        ) from None


def _looks_like_path(model: str) -> bool:
    """Whether ``model`` is meant as a file-system path rather than a hub id like owner/name."""
    return (
        Path(model).is_absolute()
        or model.startswith((".", "~"))
        or "\\" in model
        or model.count("/") > 1
    )


def _load_pixel(folder: Path, device: torch.device, dtype: torch.dtype) -> PixelBackbone:
    """A ``UNet2DModel`` in ``unet/`` + ``scheduler/`` or at the folder's root (hub layout)."""
    from diffusers import DDPMScheduler, UNet2DModel

    if (folder / "unet" / "config.json").is_file():
        unet_dir, scheduler_dir = folder / "unet", folder / "scheduler"
    elif (folder / "config.json").is_file():
        unet_dir, scheduler_dir = folder, folder
    else:
        raise NoisylinkError(
            f"no diffusion model in {folder}: expected unet/ and scheduler/ subfolders, "
            "config.json with scheduler_config.json, or a Stable Diffusion folder with vae/"
        )
    if not (scheduler_dir / "scheduler_config.json").is_file():
        raise NoisylinkError(f"no scheduler_config.json in {scheduler_dir}")
    class_name = _config_class(unet_dir / "config.json")
    if class_name not in (None, "UNet2DModel"):
        raise NoisylinkError(f"{unet_dir} holds a {class_name}, expected a UNet2DModel")
    _check_scheduler_config(scheduler_dir / "scheduler_config.json")
    _check_diffusers_model(UNet2DModel, unet_dir)
    unet = UNet2DModel.from_pretrained(unet_dir, torch_dtype=dtype, use_safetensors=True)
    scheduler = DDPMScheduler.from_pretrained(scheduler_dir)
    return PixelBackbone(unet.to(device, dtype), scheduler)


def _load_latent(folder: Path, device: torch.device, dtype: torch.dtype) -> LatentBackbone:
    """Stable Diffusion components from a pipeline folder; the text encoder is used once."""
    from diffusers import AutoencoderKL, DDPMScheduler, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTokenizer

    for part in ("vae", "unet", "text_encoder", "tokenizer", "scheduler"):
        if not (folder / part).is_dir():
            raise NoisylinkError(f"the Stable Diffusion folder {folder} has no {part}/ subfolder")
    _check_scheduler_config(folder / "scheduler" / "scheduler_config.json")
    _check_diffusers_model(AutoencoderKL, folder / "vae")
    _check_diffusers_model(UNet2DConditionModel, folder / "unet")
    _check_declared_size(
        folder / "text_encoder", "model",
        lambda: CLIPTextModel(CLIPTextConfig.from_pretrained(folder / "text_encoder")),
    )
    vae = AutoencoderKL.from_pretrained(folder / "vae", torch_dtype=dtype, use_safetensors=True)
    unet = UNet2DConditionModel.from_pretrained(
        folder / "unet", torch_dtype=dtype, use_safetensors=True
    )
    scheduler = DDPMScheduler.from_pretrained(folder / "scheduler")
    tokenizer = CLIPTokenizer.from_pretrained(folder / "tokenizer")
    text_encoder = CLIPTextModel.from_pretrained(
        folder / "text_encoder", dtype=dtype, use_safetensors=True
    )
    text_encoder = text_encoder.to(device).eval()
    length = min(tokenizer.model_max_length, text_encoder.config.max_position_embeddings)
    tokens = tokenizer(
        "", padding="max_length", max_length=length, truncation=True, return_tensors="pt"
    )
    with torch.no_grad():
        empty_embedding = text_encoder(tokens.input_ids.to(device))[0]
    return LatentBackbone(vae.to(device, dtype), unet.to(device, dtype), scheduler, empty_embedding)


def _read_config(config_file: Path) -> dict[str, Any]:
    """A config.json as a dict, with one-line errors."""
    try:
        config: Any = json.loads(config_file.read_text())
    except (OSError, ValueError) as error:
        raise NoisylinkError(f"unreadable {config_file}: {_describe(error)}") from None
    if not isinstance(config, dict):
        raise NoisylinkError(f"{config_file} is not a JSON object")
    return config


def _config_class(config_file: Path) -> str | None:
    """The ``_class_name`` a diffusers config.json records, if any."""
    name = _read_config(config_file).get("_class_name")
    return str(name) if name is not None else None


def _check_scheduler_config(config_file: Path) -> None:
    """``num_train_timesteps`` within bounds (the scheduler allocates arrays of that length)."""
    steps = _read_config(config_file).get("num_train_timesteps", 1000)
    if not isinstance(steps, int) or isinstance(steps, bool) or not 1 <= steps <= (
        MAX_TRAIN_TIMESTEPS
    ):
        raise NoisylinkError(
            f"{config_file}: num_train_timesteps must be an integer in 1..{MAX_TRAIN_TIMESTEPS}, "
            f"got {steps!r}"
        )


def _weight_files(folder: Path, stem: str) -> list[Path]:
    """A model folder's safetensors files, ``STEM.safetensors`` or the shards its index names;
    none when there are none (the loaders then refuse the folder before building anything)."""
    single = folder / f"{stem}.safetensors"
    if single.is_file():
        return [single]
    index = folder / f"{stem}.safetensors.index.json"
    if not index.is_file():
        return []
    weight_map = _read_config(index).get("weight_map")
    if not isinstance(weight_map, dict):
        raise NoisylinkError(f"{index} has no weight_map")
    names = sorted({str(name) for name in weight_map.values()})
    if any(Path(name).name != name for name in names):
        raise NoisylinkError(f"{index} names shards outside its folder")
    return [folder / name for name in names]


def _check_depth(config_file: Path, config: dict[str, Any]) -> None:
    """Bounded depth settings, so that even building the model on the meta device is cheap."""
    depth = config.get("layers_per_block", 1)
    depths = depth if isinstance(depth, list) else [depth]
    if not all(isinstance(d, int) and 0 <= d <= MAX_LAYERS_PER_BLOCK for d in depths):
        raise NoisylinkError(
            f"{config_file}: layers_per_block must be at most {MAX_LAYERS_PER_BLOCK}, got {depth!r}"
        )
    layers = config.get("num_hidden_layers", 1)
    if not isinstance(layers, int) or not 0 <= layers <= MAX_HIDDEN_LAYERS:
        raise NoisylinkError(
            f"{config_file}: num_hidden_layers must be at most {MAX_HIDDEN_LAYERS}, got {layers!r}"
        )
    for key in ("block_out_channels", "down_block_types", "up_block_types"):
        value = config.get(key, [])
        if not isinstance(value, list) or len(value) > MAX_LEVELS:
            raise NoisylinkError(f"{config_file}: {key} must list at most {MAX_LEVELS} levels")


def _check_declared_size(
    folder: Path, stem: str, build: Callable[[], torch.nn.Module]
) -> None:
    """Refuse a config describing a model larger than its weights, before allocating it.

    Depth settings are bounded, then ``build`` makes the model from its config on the meta
    device (shapes only), and its parameter count is compared with the element count the
    safetensors headers of ``STEM.safetensors`` declare.
    """
    config_file = folder / "config.json"
    _check_depth(config_file, _read_config(config_file))
    files = _weight_files(folder, stem)
    if not files:
        return
    held = 0
    for weights in files:
        try:
            held += sum(entry.numel for entry in read_safetensors_header(weights).values())
        except ValueError as error:
            raise NoisylinkError(f"{weights}: {error}") from None
    with torch.device("meta"):
        skeleton = build()
    declared = sum(parameter.numel() for parameter in skeleton.parameters())
    if declared > held:
        raise NoisylinkError(
            f"{config_file} describes a model of {declared} parameters, but its weights hold "
            f"{held}"
        )


def _check_diffusers_model(model_class: Any, folder: Path) -> None:
    """``_check_declared_size`` for a diffusers model folder."""
    _check_declared_size(
        folder, "diffusion_pytorch_model",
        lambda: model_class.from_config(model_class.load_config(folder)),
    )


def _describe(error: BaseException) -> str:
    """One short line for an exception from a loader."""
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    text = lines[0] if lines else "no details"
    if len(text) > 300:
        text = text[:297] + "..."
    return f"{type(error).__name__}: {text}"


@contextmanager
def _quiet_loaders() -> Iterator[None]:
    """Silence diffusers' and transformers' informational logs and bars while loading."""
    from diffusers.utils import logging as diffusers_logging
    from transformers.utils import logging as transformers_logging

    modules = (diffusers_logging, transformers_logging)
    levels = [module.get_verbosity() for module in modules]
    bars = [module.is_progress_bar_enabled() for module in modules]
    for module in modules:
        module.set_verbosity_error()
        module.disable_progress_bar()
    try:
        yield
    finally:
        for module, level, bar in zip(modules, levels, bars, strict=True):
            module.set_verbosity(level)
            if bar:
                module.enable_progress_bar()
