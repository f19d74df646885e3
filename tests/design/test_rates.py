"""Fitting each candidate codec's rate to the budget (``noisylink.design.rates``) and the codec
contract it rests on (``Codec.rate_knobs``, ``rate_range``, ``payload_bytes``,
``LinkChain.stream_channel_bits``).

Claims: the fitted knob value fits the budget, counted independently (encode at that value,
``LinkChain.stream_channel_bits`` per image, per pixel) and the next value on the knob's grid
does not, unless it is the top of the range; for jpeg the bisection agrees with a scan of every
quality; ``per_image`` fits the image that takes the most bits; ``knob_range`` narrows the
search and a range outside the knob's, or an unknown knob, is a one-line ``ScenarioError``
naming the field; diffusion codecs are fitted from their analytic payload size without a model;
a candidate with its rate fixed is taken as is or rejected; ``stream_channel_bits`` equals the
``channel_bits`` of a real run.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from noisylink.codecs import CODECS
from noisylink.design.loading import parse_design
from noisylink.design.rates import (
    Configuration,
    Fitter,
    Rejection,
    codec_candidates,
    fit_configurations,
)
from noisylink.design.schema import Design
from noisylink.errors import ScenarioError
from noisylink.images import SourceImage, load_images
from noisylink.link.chain import LinkChain
from noisylink.scenarios.grid import expand
from noisylink.scenarios.schema import ImagesSpec

IMAGES = {"source": "samples", "size": 64, "limit": 3}
SOURCE = "test design"


@pytest.fixture(scope="module")
def images() -> list[SourceImage]:
    return load_images(ImagesSpec(**IMAGES))


def design(codec: Sequence[dict[str, Any]], *, bpp: float = 2.0, per_image: bool = False,
           ecc: dict[str, Any] | None = None,
           modulation: dict[str, Any] | None = None) -> Design:
    return parse_design({
        "name": "rates",
        "images": IMAGES,
        "channel": {"name": "awgn", "esn0_db": [4]},
        "budget": {"bpp_channel": bpp, "per_image": per_image},
        "candidates": {
            "codec": list(codec),
            "ecc": [ecc or {"name": "none"}],
            "modulation": [modulation or {"name": "qpsk"}],
        },
        "frames": {"payload_bytes": 256, "header": "ideal"},
    }, SOURCE)


def fit_one(plan: Design, images: list[SourceImage]) -> Configuration | Rejection:
    configurations, rejections, _ = fit_configurations(plan, images, SOURCE)
    assert len(configurations) + len(rejections) == 1
    return (configurations + rejections)[0]  # type: ignore[operator]


def channel_bpp(configuration: Configuration, codec: dict[str, Any],
                images: list[SourceImage]) -> np.ndarray:
    """Channel bits per pixel of each image with ``codec`` on the configuration's link:
    encoded here, framed by the link chain."""
    cell = expand(configuration.scenario)[0]
    chain = LinkChain(cell, configuration.scenario.frames)
    coder = CODECS.build(CODECS.config(codec))
    bits = [chain.stream_channel_bits(len(coder.encode(image.pixels).payload))
            for image in images]
    pixels = [image.pixels.shape[0] * image.pixels.shape[1] for image in images]
    return np.asarray(bits, dtype=float) / np.asarray(pixels, dtype=float)


# name, knob top, grid step, budget: a budget that lands mid-range on these images
CLASSICAL = [("jpeg", 100, 1, 3.0), ("webp", 100, 1, 3.0), ("jpeg2000", 70.0, 0.1, 3.0)]


@pytest.mark.parametrize(("name", "top", "step", "bpp"), CLASSICAL)
def test_fitted_quality_fits_the_budget_and_the_next_one_up_does_not(
    images: list[SourceImage], name: str, top: float, step: float, bpp: float
) -> None:
    plan = design([{"name": name}], bpp=bpp, ecc={"name": "rs", "k": 223},
                  modulation={"name": "16qam"})
    fitted = fit_one(plan, images)
    assert isinstance(fitted, Configuration), fitted
    assert fitted.knob == "quality" and fitted.knob_value is not None
    value = fitted.knob_value
    assert fitted.codec == {"name": name, "quality": value}
    spent = channel_bpp(fitted, fitted.codec, images)
    assert spent.mean() <= bpp
    assert fitted.bpp_channel == pytest.approx(spent.mean())
    assert value < top, "the budget should land inside the range for this claim"
    above = round(value + step, 6)
    assert channel_bpp(fitted, {"name": name, "quality": above}, images).mean() > bpp


def test_a_budget_above_the_top_quality_fits_the_top(images: list[SourceImage]) -> None:
    fitted = fit_one(design([{"name": "jpeg"}], bpp=1000), images)
    assert isinstance(fitted, Configuration)
    assert fitted.knob_value == 100


def test_jpeg_bisection_agrees_with_a_scan_of_every_quality(images: list[SourceImage]) -> None:
    plan = design([{"name": "jpeg"}], bpp=2.0)
    fitted = fit_one(plan, images)
    assert isinstance(fitted, Configuration)
    fitting = [quality for quality in range(1, 101)
               if channel_bpp(fitted, {"name": "jpeg", "quality": quality}, images).mean() <= 2.0]
    assert fitted.knob_value == max(fitting)


def test_per_image_budget_fits_the_image_that_takes_the_most_bits(
    images: list[SourceImage]
) -> None:
    on_mean = fit_one(design([{"name": "jpeg"}], bpp=2.0), images)
    per_image = fit_one(design([{"name": "jpeg"}], bpp=2.0, per_image=True), images)
    assert isinstance(on_mean, Configuration) and isinstance(per_image, Configuration)
    assert per_image.knob_value is not None and on_mean.knob_value is not None
    assert per_image.knob_value < on_mean.knob_value  # these images differ in how they code
    spent = channel_bpp(per_image, per_image.codec, images)
    assert spent.max() <= 2.0
    above = {"name": "jpeg", "quality": per_image.knob_value + 1}
    assert channel_bpp(per_image, above, images).max() > 2.0
    assert per_image.bpp_channel == pytest.approx(spent.mean())  # reported: still the mean


def test_knob_range_narrows_the_search(images: list[SourceImage]) -> None:
    roomy = fit_one(design([{"name": "jpeg", "knob_range": [20, 40]}], bpp=1000), images)
    assert isinstance(roomy, Configuration) and roomy.knob_value == 40
    free = fit_one(design([{"name": "jpeg"}], bpp=2.0), images)
    narrowed = fit_one(design([{"name": "jpeg", "knob_range": [20, 40]}], bpp=2.0), images)
    assert isinstance(free, Configuration) and isinstance(narrowed, Configuration)
    assert free.knob_value is not None and free.knob_value > 40
    assert narrowed.knob_value == 40
    assert "knob_range" not in narrowed.codec


def test_knob_range_whose_low_does_not_fit_is_a_rejection(images: list[SourceImage]) -> None:
    rejected = fit_one(design([{"name": "jpeg", "knob_range": [90, 100]}], bpp=1.0), images)
    assert isinstance(rejected, Rejection)
    assert "quality=90" in rejected.reason


@pytest.mark.parametrize("knob_range", [[0, 50], [50, 101], [60, 40], [1], "low"])
def test_a_knob_range_outside_the_knobs_is_a_one_line_error(knob_range: object) -> None:
    plan = design([{"name": "jpeg", "knob_range": knob_range}])
    with pytest.raises(ScenarioError) as raised:
        codec_candidates(plan)
    assert raised.value.field == "candidates.codec[0].knob_range"
    assert "candidates.codec[0].knob_range" in str(raised.value)
    assert "\n" not in str(raised.value)


def test_knob_t_turns_t_and_leaves_m_at_its_default(images: list[SourceImage]) -> None:
    plan = design([{"name": "robust-turbo-ddcm", "knob": "T"}], bpp=0.5)
    [candidate] = codec_candidates(plan)
    assert candidate.knob is not None and candidate.knob.field == "T"
    fitted = fit_one(plan, images)
    assert isinstance(fitted, Configuration)
    assert fitted.knob == "T" and "M" not in fitted.codec and "knob" not in fitted.codec
    assert fitted.codec["T"] == fitted.knob_value


def test_diffusion_m_knob_is_bounded_by_the_codebook_size() -> None:
    [candidate] = codec_candidates(design([{"name": "turbo-ddcm", "K": 16}]))
    assert candidate.knob is not None and candidate.knob.field == "M"
    assert (candidate.low, candidate.high) == (1, 16)


def test_an_unknown_knob_names_the_field_and_lists_the_codecs_knobs() -> None:
    plan = design([{"name": "robust-turbo-ddcm", "knob": "bogus"}])
    with pytest.raises(ScenarioError) as raised:
        codec_candidates(plan)
    assert raised.value.field == "candidates.codec[0].knob"
    message = str(raised.value)
    assert "bogus" in message and "M, T" in message and "\n" not in message


def test_diffusion_candidates_are_fitted_without_a_model_or_an_encode(
    images: list[SourceImage], monkeypatch: pytest.MonkeyPatch
) -> None:
    from noisylink.codecs.diffusion import backbone, codecs

    def refuse(*_args: object, **_kwargs: object) -> None:
        raise AssertionError("fitting loaded a model or encoded")

    monkeypatch.setattr(backbone, "load_backbone", refuse)
    monkeypatch.setattr(codecs._DiffusionCodec, "encode_batch", refuse)
    plan = design([{"name": "ddcm"}, {"name": "turbo-ddcm"}, {"name": "robust-turbo-ddcm"},
                   {"name": "robust-turbo-ddcm", "knob": "T"}], bpp=0.5)
    configurations, rejections, encodes = fit_configurations(plan, images, SOURCE)
    assert encodes == 0 and rejections == []
    assert [c.knob for c in configurations] == ["T", "M", "M", "T"]
    assert all(c.bpp_channel <= 0.5 for c in configurations)


@pytest.mark.parametrize("method", ["ddcm", "turbo", "robust"])
@pytest.mark.parametrize(("K", "M", "T"), [(4096, 20, 10), (256, 3, 7), (1000, 5, 1),
                                           (2, 1, 3), (65536, 100, 2)])
def test_payload_bytes_is_the_length_of_a_packed_stream(method: str, K: int, M: int,
                                                        T: int) -> None:
    from noisylink.codecs.diffusion.bitstream import pack

    name = {"ddcm": "ddcm", "turbo": "turbo-ddcm", "robust": "robust-turbo-ddcm"}[method]
    atoms = 1 if method == "ddcm" else M
    settings: dict[str, Any] = {"name": name, "K": K, "T": T}
    if method != "ddcm":
        settings["M"] = M
    codec = CODECS.build(CODECS.config(settings))
    rng = np.random.default_rng([K, M, T])
    if method == "turbo":
        indices = np.stack([rng.choice(K, size=atoms, replace=False) for _ in range(T)])
    else:
        indices = rng.integers(0, K, size=(T, atoms))
    signs = rng.choice(np.array([-1, 1]), size=(T, atoms))
    payload = pack(method, K, indices, signs)  # type: ignore[arg-type]
    for shape in [(64, 64, 3), (32, 48, 1)]:
        assert codec.payload_bytes(*shape) == len(payload)


def test_a_fixed_quality_candidate_is_evaluated_as_is(images: list[SourceImage]) -> None:
    fitted = fit_one(design([{"name": "jpeg", "quality": 50}], bpp=1000), images)
    assert isinstance(fitted, Configuration)
    assert fitted.codec == {"name": "jpeg", "quality": 50}
    assert fitted.knob == "" and fitted.knob_value is None
    assert fitted.bpp_channel == pytest.approx(channel_bpp(fitted, fitted.codec, images).mean())


def test_a_fixed_quality_candidate_that_does_not_fit_is_a_rejection(
    images: list[SourceImage]
) -> None:
    rejected = fit_one(design([{"name": "jpeg", "quality": 95}], bpp=1.0), images)
    assert isinstance(rejected, Rejection)
    assert "jpeg(quality=95)" in rejected.label and "bpp_channel" in rejected.reason


def test_a_fixed_candidate_refuses_knob_settings() -> None:
    with pytest.raises(ScenarioError) as raised:
        codec_candidates(design([{"name": "jpeg", "quality": 50, "knob": "quality"}]))
    assert raised.value.field == "candidates.codec[0]"


def test_payload_sizes_are_encoded_once_per_setting(images: list[SourceImage]) -> None:
    plan = design([{"name": "jpeg"}], bpp=2.0)
    fitter = Fitter(plan, images, SOURCE)
    [candidate] = codec_candidates(plan)
    first = fitter.fit(candidate, {"name": "none"}, {"name": "qpsk"})
    encodes = fitter.sizes.encodes
    again = fitter.fit(candidate, {"name": "none"}, {"name": "bpsk"})
    assert isinstance(first, Configuration) and isinstance(again, Configuration)
    assert first.knob_value == again.knob_value  # bpsk and qpsk pad alike at these sizes
    assert fitter.sizes.encodes == encodes


# --- stream_channel_bits against a real run ---------------------------------------------------


LINKS = [
    pytest.param({"ecc": {"name": "rs", "k": 223}, "interleaver": {"name": "block", "depth": 16},
                  "modulation": {"name": "qpsk"}}, id="rs-interleaver-qpsk"),
    pytest.param({"ecc": {"name": "ldpc", "n": 648, "rate": "1/2", "iterations": 5},
                  "modulation": {"name": "16qam"}}, id="ldpc-16qam"),
]


@pytest.mark.parametrize("link", LINKS)
def test_stream_channel_bits_equals_the_channel_bits_of_a_run(
    tmp_path: Path, link: dict[str, Any]
) -> None:
    from noisylink.link.runner import run_scenario
    from noisylink.scenarios.loading import parse_scenario

    scenario = parse_scenario({
        "name": "bits",
        "images": {"source": "samples", "size": 32, "limit": 2},
        "codec": {"name": "jpeg", "quality": [30, 80]},
        "channel": {"name": "awgn", "esn0_db": 12},
        "frames": {"payload_bytes": 100, "header": "inband"},
        "trials": 1,
        **link,
    }, SOURCE)
    outcome = run_scenario(scenario, tmp_path / "out")
    cells = expand(scenario)
    assert len(outcome.rows) == 4
    for row in outcome.rows:
        assert row.source_bits % 8 == 0
        chain = LinkChain(cells[row.cell], scenario.frames)
        assert chain.stream_channel_bits(row.source_bits // 8) == row.channel_bits
