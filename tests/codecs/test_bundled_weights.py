"""The registry of bundled weights (``noisylink.weights``): every model folder in the package is
an entry, every entry's folder exists, loads through its codec's checked loader and ships with
the package, each entry's command is a valid ``noisylink train-*`` command that agrees with the
recipe recorded beside the weights, and ``bundled`` resolves through it."""

from __future__ import annotations

import itertools
import json
import shlex
import tomllib
from pathlib import Path, PurePosixPath
from typing import Any

import pytest
from typer.main import get_command

from noisylink.cli import app
from noisylink.codecs.diffusion.backbone import BUNDLED_PRIOR, load_backbone
from noisylink.codecs.jscc.weights import BUNDLED_EPS, METHODS, load_model, model_dir
from noisylink.codecs.learned.weights import BUNDLED_PREFIX, available_qualities, quality_dir
from noisylink.codecs.learned.weights import load_model as load_hyperprior
from noisylink.errors import NoisylinkError
from noisylink.weights import BUNDLED, PACKAGE, bundled_weights

ROOT = PACKAGE.parent


def model_folders() -> set[Path]:
    """Every model folder in the package: the subfolders of each ``weights/`` folder."""
    return {
        model
        for weights in PACKAGE.rglob("weights")
        if weights.is_dir()
        for model in weights.iterdir()
        if model.is_dir() and model.name != "__pycache__"
    }


def test_every_weights_folder_in_the_package_is_an_entry() -> None:
    assert model_folders() == {entry.folder for entry in BUNDLED.values()}
    assert len(BUNDLED) == 13


@pytest.mark.parametrize("name", sorted(BUNDLED))
def test_every_entry_exists_and_loads(name: str) -> None:
    entry = bundled_weights(name)
    assert entry.folder.is_dir() and entry.folder.is_relative_to(PACKAGE)
    if entry.format == "diffusers":
        assert (entry.folder / "unet").is_dir() and (entry.folder / "scheduler").is_dir()
        backbone = load_backbone(str(entry.folder), "cpu")
        assert backbone.kind == "pixel" and backbone.train_timesteps == 1000
    else:
        assert entry.format == "safetensors"
        assert (entry.folder / "model.safetensors").is_file()
        if name.startswith(BUNDLED_PREFIX):
            assert load_hyperprior(entry.folder).shape.M > 0
        else:
            assert load_model(entry.folder).shape.bits == 100
    assert entry.description and "\n" not in entry.description


def recorded_recipe(name: str) -> dict[str, Any]:
    """The recipe stored beside the weights when they were made."""
    entry = bundled_weights(name)
    if entry.format == "diffusers":
        return json.loads((entry.folder / "recipe.json").read_text())
    return json.loads((entry.folder / "config.json").read_text())["recipe"]


@pytest.mark.parametrize("name", sorted(BUNDLED))
def test_every_entry_says_the_command_that_made_it_as_recorded(name: str) -> None:
    words = shlex.split(bundled_weights(name).made_by)
    trainer = ("train-jscc" if "eps" in name
               else "train-learned" if name.startswith(BUNDLED_PREFIX) else "train-prior")
    assert words[:2] == ["noisylink", trainer]
    command = get_command(app).commands[words[1]]  # type: ignore[attr-defined]
    parsed = command.make_context(words[1], words[2:]).params  # parses as the CLI would
    options = {key: str(value) if isinstance(value, Path) else value
               for key, value in parsed.items()}
    recipe = recorded_recipe(name)
    shared = sorted(set(options) & set(recipe))
    assert len(shared) >= 3
    assert {key: options[key] for key in shared} == {key: recipe[key] for key in shared}
    assert Path(options["out"]) == bundled_weights(name).folder.relative_to(ROOT)


def test_every_file_of_an_entry_ships_with_the_package() -> None:
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    package_data: dict[str, list[str]] = pyproject["tool"]["setuptools"]["package-data"]
    for entry in BUNDLED.values():
        package = entry.folder
        while not (package / "__init__.py").is_file():
            package = package.parent
        globs = package_data[".".join(package.relative_to(ROOT).parts)]
        files = [path for path in entry.folder.rglob("*") if path.is_file()]
        assert files
        for path in files:
            relative = PurePosixPath(path.relative_to(package).as_posix())
            assert any(
                len(relative.parts) == len(PurePosixPath(glob).parts) and relative.match(glob)
                for glob in globs
            ), f"{path} matches no package-data glob of {package}"


def test_bundled_resolves_through_the_registry() -> None:
    for method in METHODS:
        for eps in BUNDLED_EPS:
            entry = bundled_weights(f"{method}-eps{eps:g}")
            assert model_dir("bundled", method, eps) == entry.folder
    qualities = available_qualities("bundled")
    assert qualities == list(range(1, len(qualities) + 1)) and len(qualities) >= 4
    for quality in qualities:
        entry = bundled_weights(f"{BUNDLED_PREFIX}{quality}")
        assert quality_dir("bundled", quality) == entry.folder
    prior = bundled_weights(BUNDLED_PRIOR)
    assert prior.format == "diffusers"
    bundled = load_backbone("bundled", "cpu")
    by_folder = load_backbone(str(prior.folder), "cpu")
    assert bundled is not by_folder  # two loads, from the same files
    for mine, theirs in zip(bundled.unet.parameters(), by_folder.unet.parameters(), strict=True):
        assert mine.equal(theirs)


def test_an_unknown_name_is_a_one_line_error_naming_the_bundled_ones() -> None:
    with pytest.raises(NoisylinkError) as caught:
        bundled_weights("nope")
    assert str(caught.value).startswith(
        "no bundled weights named 'nope'; the package holds bsds-ddpm, necst-eps0.1, "
    )
    assert "\n" not in str(caught.value)


def test_the_docs_table_of_bundled_weights_is_the_registry() -> None:
    rows = [
        line for line in (ROOT / "docs" / "codecs.md").read_text().splitlines()
        if line.startswith("| [`")
    ]
    expected = [
        f"| [`{name}`](../{entry.folder.relative_to(ROOT).as_posix()}/) | {entry.format} | "
        f"{entry.description} | `{entry.made_by}` |"
        for name, entry in BUNDLED.items()
    ]
    assert rows == expected


def test_the_bundled_hyperprior_rate_points_rise_in_bits_and_quality() -> None:
    from noisylink.codecs import CODECS
    from noisylink.images import load_images
    from noisylink.metrics import psnr
    from noisylink.scenarios.schema import ImagesSpec

    pictures = [image.pixels for image in load_images(
        ImagesSpec(source="samples", resize=64, size=64, limit=3, color="rgb"))]
    points = []
    for quality in available_qualities("bundled"):
        codec = CODECS.build(CODECS.config({"name": "hyperprior", "quality": quality}))
        encoded = [codec.encode(picture) for picture in pictures]
        decoded = [codec.decode(e.payload, e.n_bits, e.side_info) for e in encoded]
        points.append((sum(e.n_bits for e in encoded),
                       sum(psnr(p, d) for p, d in zip(pictures, decoded, strict=True))))
    assert all(a[0] < b[0] and a[1] < b[1] for a, b in itertools.pairwise(points))


def test_bundled_hyperprior_and_diffc_run_through_a_link_without_any_data_folder(
        tmp_path: Path) -> None:
    from noisylink.link.runner import run_scenario
    from noisylink.results.file import read_rows
    from noisylink.scenarios import parse_scenario

    scenario = parse_scenario({
        "name": "learned", "seed": 2, "images": {"source": "samples", "limit": 1, "size": 32},
        "codec": [{"name": "hyperprior", "quality": 1},
                  {"name": "diffc", "steps": 6, "stop": 2, "chunk_bits": 6}],
        "channel": {"name": "bsc", "ber": [0.0, 1e-2]}, "trials": 1,
    }, "test")
    rows = read_rows(run_scenario(scenario, tmp_path / "out").results_path)
    assert sorted(row["codec"] for row in rows) == ["diffc", "diffc", "hyperprior", "hyperprior"]
    assert all(float(row["psnr"]) > 8 for row in rows if row["channel_value"] == "0.0")
