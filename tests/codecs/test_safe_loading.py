"""Weight files and model folders that are damaged, planted or declare absurd sizes are refused
in one line before anything large is allocated (``noisylink.safeload``, diffusion backbones)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch
from diffusion_models import tiny_pixel_prior

from noisylink.codecs.diffusion.backbone import load_backbone
from noisylink.errors import NoisylinkError
from noisylink.safeload import check_tensors, load_torch_checkpoint, read_safetensors_header


def safetensors_file(path: Path, tensors: dict[str, torch.Tensor]) -> Path:
    from safetensors.torch import save_file

    save_file(tensors, str(path))
    return path


def test_a_sound_header_is_read_without_loading_tensors(tmp_path: Path) -> None:
    path = safetensors_file(tmp_path / "w.safetensors", {
        "a": torch.zeros(3, 4, dtype=torch.float16), "b": torch.zeros(5)})
    entries = read_safetensors_header(path)
    assert {name: (e.dtype, e.shape) for name, e in entries.items()} == {
        "a": ("F16", (3, 4)), "b": ("F32", (5,))}
    check_tensors(entries, {"a": (3, 4), "b": (5,)})
    with pytest.raises(ValueError, match=r"'a' has shape \[3, 4\], the model expects \[4, 3\]"):
        check_tensors(entries, {"a": (4, 3), "b": (5,)})


@pytest.mark.parametrize(("header", "match"), [
    ({"a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 4]}}, "declares shape"),
    ({"a": {"dtype": "Q4", "shape": [2], "data_offsets": [0, 8]}}, "unknown dtype"),
    ({"a": {"dtype": "F32", "shape": [-2], "data_offsets": [0, 8]}}, "invalid shape"),
    ({"a": {"dtype": "F32", "shape": [2], "data_offsets": [8, 16]}}, "does not start"),
    ({"a": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]}}, "trailing bytes"),
    ({"a": {"dtype": "F32", "shape": [10**9, 10**9], "data_offsets": [0, 4 * 10**18]}},
     "truncated"),
    ([1, 2], "not a JSON object"),
])
def test_malformed_headers_are_refused(tmp_path: Path, header, match: str) -> None:
    text = json.dumps(header).encode()
    path = tmp_path / "w.safetensors"
    path.write_bytes(len(text).to_bytes(8, "little") + text + b"\0" * 8)
    with pytest.raises(ValueError, match=match):
        read_safetensors_header(path)


class WritesMarker:
    """Pickles as a call to ``open(marker, "w")``: loading it unsafely creates the marker."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (open, (str(self.marker), "w"))


def test_a_pickled_object_in_a_checkpoint_is_refused_and_runs_nothing(tmp_path: Path) -> None:
    marker = tmp_path / "marker"
    torch.save({"state": WritesMarker(marker)}, tmp_path / "checkpoint.pt")
    with pytest.raises(ValueError, match="refused") as info:
        load_torch_checkpoint(tmp_path / "checkpoint.pt")
    assert "\n" not in str(info.value)
    assert not marker.exists()
    plain = {"w": torch.arange(3), "step": 7, "rng": {"state": 2**100, "inc": 5}}
    torch.save(plain, tmp_path / "plain.pt")
    loaded = load_torch_checkpoint(tmp_path / "plain.pt")
    assert loaded["step"] == 7 and loaded["rng"]["state"] == 2**100
    assert torch.equal(loaded["w"], torch.arange(3))


# --- diffusion model folders -----------------------------------------------------------------


def prior_copy(tmp_path: Path) -> Path:
    folder = tmp_path / "prior"
    shutil.copytree(tiny_pixel_prior(), folder)
    return folder


def edit_json(path: Path, **changes) -> None:
    path.write_text(json.dumps(json.loads(path.read_text()) | changes))


def refused(model: Path, match: str) -> str:
    with pytest.raises(NoisylinkError, match=match) as info:
        load_backbone(str(model))
    message = str(info.value)
    assert message.startswith(f"cannot load diffusion model '{model}'") and "\n" not in message
    return message


def test_a_unet_config_declaring_an_absurd_model_is_refused_before_allocating(
    tmp_path: Path,
) -> None:
    # 100 000 channels at the last level: about 10^12 parameters, 4 TB in float32
    folder = prior_copy(tmp_path)
    edit_json(folder / "unet" / "config.json", block_out_channels=[8, 16, 100_000])
    refused(folder, r"describes a model of \d+ parameters, but its weights hold \d+")


def test_a_unet_config_of_absurd_depth_is_refused(tmp_path: Path) -> None:
    folder = prior_copy(tmp_path)
    edit_json(folder / "unet" / "config.json", layers_per_block=1_000_000)
    refused(folder, "layers_per_block must be at most")


def test_a_scheduler_with_absurd_timesteps_is_refused(tmp_path: Path) -> None:
    folder = prior_copy(tmp_path)
    edit_json(folder / "scheduler" / "scheduler_config.json", num_train_timesteps=10**12)
    refused(folder, "num_train_timesteps must be an integer")


def test_truncated_unet_weights_are_one_line_naming_the_file(tmp_path: Path) -> None:
    folder = prior_copy(tmp_path)
    weights = folder / "unet" / "diffusion_pytorch_model.safetensors"
    weights.write_bytes(weights.read_bytes()[:-1000])
    assert str(weights) in refused(folder, "truncated")


def test_pickled_weights_are_never_read(tmp_path: Path) -> None:
    folder = prior_copy(tmp_path)
    marker = tmp_path / "marker"
    (folder / "unet" / "diffusion_pytorch_model.safetensors").unlink()
    torch.save({"conv_in.weight": WritesMarker(marker)},
               folder / "unet" / "diffusion_pytorch_model.bin")
    refused(folder, "safetensors")
    assert not marker.exists()


def test_a_sound_copy_still_loads(tmp_path: Path) -> None:
    backbone = load_backbone(str(prior_copy(tmp_path)))
    assert backbone.kind == "pixel"


def test_a_text_encoder_config_declaring_an_absurd_model_is_refused(tmp_path: Path) -> None:
    from diffusion_models import make_tiny_stable_diffusion

    folder = make_tiny_stable_diffusion(tmp_path / "sd")
    edit_json(folder / "text_encoder" / "config.json", intermediate_size=10**9)
    refused(folder, r"text_encoder/config.json describes a model of \d+ parameters")


def test_a_vae_config_declaring_an_absurd_model_is_refused(tmp_path: Path) -> None:
    from diffusion_models import make_tiny_stable_diffusion

    folder = make_tiny_stable_diffusion(tmp_path / "sd")
    vae_config = json.loads((folder / "vae" / "config.json").read_text())
    edit_json(folder / "vae" / "config.json",
              block_out_channels=[*vae_config["block_out_channels"][:-1], 100_000])
    refused(folder, r"vae/config.json describes a model of \d+ parameters")
