"""Scenario loading, validation errors that name the field, and grid expansion."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from noisylink.errors import ScenarioError
from noisylink.scenarios import builtin_names, expand, load_scenario, parse_scenario, stream_seed

BASE = {
    "name": "t",
    "seed": 1,
    "images": {"source": "samples", "size": 32, "limit": 1},
    "codec": {"name": "jpeg", "quality": [50, 75]},
    "ecc": [{"name": "none"}, {"name": "rs", "k": 223}],
    "channel": {"name": "bsc", "ber": [1e-4, 1e-3, 1e-2]},
}


def test_every_builtin_loads_and_expands() -> None:
    assert "quickstart" in builtin_names()
    for name in builtin_names():
        scenario, source = load_scenario(name)
        assert source == f"built-in {name}"
        assert expand(scenario)


def test_grid_is_the_product_of_lists() -> None:
    cells = expand(parse_scenario(BASE, "t"))
    assert len(cells) == 2 * 2 * 3
    assert {c.channel_param for c in cells} == {"ber"}
    assert sorted({c.channel_value for c in cells}) == [1e-4, 1e-3, 1e-2]
    assert len({c.key for c in cells}) == len(cells)


def test_list_of_codecs_each_with_list_settings() -> None:
    data = BASE | {"codec": [{"name": "jpeg", "quality": [50, 75]}, {"name": "webp"}]}
    cells = expand(parse_scenario(data, "t"))
    assert [c.codec.name for c in cells].count("webp") == 2 * 3


def test_stream_seed_depends_on_cell_not_on_position() -> None:
    cells = expand(parse_scenario(BASE, "t"))
    reordered = expand(parse_scenario(BASE | {"ecc": list(reversed(BASE["ecc"]))}, "t"))
    by_key = {c.key: c for c in reordered}
    for cell in cells:
        same = by_key[cell.key]
        assert stream_seed(1, cell, 0, 2).generate_state(4).tolist() == (
            stream_seed(1, same, 0, 2).generate_state(4).tolist()
        )
    assert stream_seed(1, cells[0], 0, 0).generate_state(2).tolist() != (
        stream_seed(1, cells[0], 0, 1).generate_state(2).tolist()
    )


@pytest.mark.parametrize(("change", "field"), [
    ({"trials": 0}, "trials"),
    ({"colour": 1}, "colour"),
    ({"frames": {"payload_bytes": 0}}, "frames.payload_bytes"),
    ({"frames": {"header": "sideways"}}, "frames.header"),
    ({"images": {"source": "folder"}}, "images"),
])
def test_schema_errors_name_the_field(change: dict, field: str) -> None:
    with pytest.raises(ScenarioError) as info:
        parse_scenario(BASE | change, "my.yaml")
    assert info.value.source == "my.yaml"
    assert info.value.field == field
    assert "\n" not in str(info.value)


@pytest.mark.parametrize(("change", "field"), [
    ({"codec": {"name": "jpegg"}}, "codec.name"),
    ({"codec": {"name": "jpeg", "qualty": 3}}, "codec.qualty"),
    ({"ecc": [{"name": "none"}, {"name": "rs", "k": 300}]}, "ecc[1].k"),
    ({"channel": {"name": "bsc", "ber": []}}, "channel.ber"),
    ({"channel": {"name": "awgn", "esn0_db": 3}}, "modulation"),
    ({"modulation": {"name": "qpsk"}}, "modulation"),
    ({"interleaver": {"name": "block", "depth": [4, 8]}}, "interleaver"),
])
def test_component_errors_name_the_field(change: dict, field: str) -> None:
    with pytest.raises(ScenarioError) as info:
        parse_scenario(BASE | change, "my.yaml")
    assert info.value.field == field, str(info.value)
    assert info.value.source == "my.yaml"


def test_unknown_component_lists_valid_names() -> None:
    with pytest.raises(ScenarioError, match=r"valid: .*jpeg"):
        parse_scenario(BASE | {"codec": {"name": "gif"}}, "t")


def test_file_errors(tmp_path: Path) -> None:
    with pytest.raises(ScenarioError, match="no such scenario file"):
        load_scenario(tmp_path / "missing.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: x\ncodec: {name: jpeg\n")
    with pytest.raises(ScenarioError, match="invalid YAML") as info:
        load_scenario(bad)
    assert str(bad) in str(info.value)
    with pytest.raises(ScenarioError, match=r"built-ins: .*quickstart"):
        load_scenario("no-such-builtin")
    good = tmp_path / "good.yaml"
    good.write_text(yaml.safe_dump(BASE))
    scenario, source = load_scenario(good)
    assert scenario.name == "t" and source == str(good)


def test_example_files_for_users_are_valid() -> None:
    """Every file under scenarios/ is a valid scenario, or a valid study of several."""
    from noisylink.sweeps.study import load_study

    examples = sorted((Path(__file__).parents[2] / "scenarios").glob("*.yaml"))
    assert examples
    for path in examples:
        for scenario in load_study(str(path)).scenarios:
            assert expand(scenario)
    assert any(len(load_study(str(path)).scenarios) > 1 for path in examples)


# --- booleans are not numbers; image sides are bounded ----------------------------------------


@pytest.mark.parametrize(("change", "field"), [
    ({"codec": {"name": "jpeg", "quality": True}}, "codec.quality"),
    ({"codec": {"name": "jpeg2000", "quality": False}}, "codec.quality"),
    ({"codec": {"name": "webp", "bpp": True}}, "codec.bpp"),
    ({"codec": {"name": "ddcm", "K": True}}, "codec.K"),
    ({"codec": {"name": "robust-turbo-ddcm", "M": [4, True]}}, "codec.M"),
    ({"codec": {"name": "necst", "eps": True}}, "codec.eps"),
    ({"ecc": {"name": "rs", "k": True}}, "ecc.k"),
    ({"ecc": {"name": "repetition", "n": True}}, "ecc.n"),
    ({"ecc": {"name": "ldpc", "iterations": True}}, "ecc.iterations"),
    ({"ecc": {"name": "conv", "block_bits": True}}, "ecc.block_bits"),
    ({"interleaver": {"name": "block", "depth": True}}, "interleaver.depth"),
    ({"channel": {"name": "bsc", "ber": True}}, "channel.ber"),
    ({"channel": {"name": "bec", "p": [0.1, False]}}, "channel.p"),
    ({"channel": {"name": "gilbert_elliott", "p_gb": True, "p_bg": 0.5}}, "channel.p_gb"),
    ({"seed": True}, "seed"),
    ({"trials": True}, "trials"),
    ({"images": {"size": True}}, "images.size"),
    ({"images": {"limit": True}}, "images.limit"),
    ({"frames": {"payload_bytes": True}}, "frames.payload_bytes"),
])
def test_a_boolean_is_not_accepted_as_a_number(change: dict, field: str) -> None:
    with pytest.raises(ScenarioError, match="expected a number, got a boolean") as info:
        parse_scenario(BASE | change, "my.yaml")
    assert info.value.field == field, str(info.value)
    assert info.value.source == "my.yaml" and "\n" not in str(info.value)


def test_symbol_channel_booleans_are_refused_too() -> None:
    data = BASE | {"modulation": {"name": "qpsk"}, "channel": {"name": "awgn", "esn0_db": True}}
    with pytest.raises(ScenarioError, match="boolean") as info:
        parse_scenario(data, "t")
    assert info.value.field == "channel.esn0_db"


def test_yaml_integers_still_fill_float_settings() -> None:
    text = """
name: ints
codec: [{name: jpeg, quality: [50, 75]}, {name: jpeg2000, quality: 30}, {name: webp, bpp: 1}]
channel: {name: bsc, ber: [0, 1.0e-3]}
"""
    cells = expand(parse_scenario(yaml.safe_load(text), "t"))
    assert len(cells) == 4 * 2
    assert sorted({c.channel_value for c in cells}) == [0.0, 1e-3]
    assert {c.codec.quality for c in cells if c.codec.name == "jpeg2000"} == {30.0}
    awgn = BASE | {"modulation": {"name": "qpsk"}, "channel": {"name": "awgn", "esn0_db": [4, 6]}}
    assert sorted({c.channel_value for c in expand(parse_scenario(awgn, "t"))}) == [4.0, 6.0]


def test_quality_true_is_one_line_and_exit_2_in_check(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from noisylink.cli import app

    path = tmp_path / "bool.yaml"
    path.write_text(yaml.safe_dump(BASE | {"codec": {"name": "jpeg", "quality": True}}))
    result = CliRunner().invoke(app, ["check", str(path)])
    assert result.exit_code == 2
    assert result.output == (
        f"error: {path}: codec.quality: expected a number, got a boolean (true)\n"
    )


@pytest.mark.parametrize("setting", ["size", "resize"])
def test_image_sides_are_bounded_with_one_line(tmp_path: Path, setting: str) -> None:
    from typer.testing import CliRunner

    from noisylink.cli import app

    path = tmp_path / "huge.yaml"
    path.write_text(yaml.safe_dump(BASE | {"images": {"source": "samples", setting: 100000}}))
    result = CliRunner().invoke(app, ["check", str(path)])
    assert result.exit_code == 2
    assert result.output.count("\n") == 1 and "Traceback" not in result.output
    assert f"images.{setting}: Input should be less than or equal to 8192" in result.output
    ok = BASE | {"images": {"source": "samples", setting: 8192}}
    assert expand(parse_scenario(ok, "t"))


def test_sweep_scale_size_is_bounded_and_booleans_refused(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from noisylink.cli import app
    from noisylink.sweeps.study import load_study

    result = CliRunner().invoke(app, ["sweep", "quickstart", "--out", str(tmp_path / "s"),
                                      "--size", "100000"])
    assert result.exit_code == 2
    assert result.output == "error: --size: Input should be less than or equal to 8192\n"
    study = tmp_path / "study.yaml"
    study.write_text(yaml.safe_dump({"name": "s", "scale": {"trials": True},
                                     "scenarios": ["quickstart"]}))
    with pytest.raises(ScenarioError, match="expected a number, got a boolean") as info:
        load_study(str(study))
    assert info.value.field == "scale.trials"
