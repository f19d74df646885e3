"""The registry of bundled weights (``noisylink.weights``): every model folder in the package is
an entry, every entry's folder exists, loads through its codec's checked loader and ships with
the package, each entry's command is a valid ``noisylink train-*`` command that agrees with the
recipe recorded beside the weights, and ``bundled`` resolves through it."""

from __future__ import annotations

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
    assert len(BUNDLED) == 9


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
    assert words[:2] == ["noisylink", "train-jscc" if "eps" in name else "train-prior"]
    command = get_command(app).commands[words[1]]  # type: ignore[attr-defined]
    options = command.make_context(words[1], words[2:]).params  # parses as the CLI would
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
