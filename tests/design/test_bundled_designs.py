"""The bundled designs load, and every candidate codec fits their budget with some ECC."""

from __future__ import annotations

import pytest

from noisylink.design.loading import builtin_design_names, load_design
from noisylink.design.rates import fit_configurations
from noisylink.images import load_images


def test_the_two_documented_designs_are_bundled() -> None:
    assert {"deep-space-downlink", "noisy-radio"} <= set(builtin_design_names())


@pytest.mark.slow
@pytest.mark.parametrize("name", ["deep-space-downlink", "noisy-radio"])
def test_every_candidate_codec_of_a_bundled_design_fits_its_budget(name: str) -> None:
    design, source = load_design(name)
    fitted, _, _ = fit_configurations(design, load_images(design.images), source)
    codecs = {entry["name"] for entry in design.candidates.codec}
    assert {configuration.codec["name"] for configuration in fitted} == codecs
    budget = design.budget.bpp_channel
    assert all(configuration.bpp_channel <= budget for configuration in fitted)
