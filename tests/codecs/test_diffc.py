"""DiffC: the Poisson functional representation samples its target, chunking is shared by both
ends, the decoder rebuilds the encoder's picture bit for bit, the rate follows stop or bpp, and
any bits decode."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch
from diffusion_models import tiny_pixel_prior

from noisylink.codecs import CODECS
from noisylink.codecs.diffusion import pfr
from noisylink.codecs.diffusion.diffc import DiffcSideInfo
from noisylink.errors import NoisylinkError


def test_pfr_choice_is_a_sample_of_the_target_and_costs_about_its_kl() -> None:
    delta = torch.tensor([1.0, 0.5, 0.0, -1.5])
    chosen, indices = [], []
    for step in range(1200):
        index = pfr.select_index(delta, 7, step, 0, 1024)
        indices.append(index)
        chosen.append(pfr.chosen_candidate(index, 7, step, 0, 4))
    samples = torch.stack(chosen)
    # N(Δ, I): mean Δ and unit variance, within sampling error of 1,200 draws
    torch.testing.assert_close(samples.mean(0), delta, atol=0.12, rtol=0)
    torch.testing.assert_close(samples.var(0), torch.ones(4), atol=0.15, rtol=0)
    kl_bits = float(delta.square().sum()) / 2 / math.log(2)
    index_bits = np.mean(np.log2(np.array(indices) + 1.0))
    assert index_bits < kl_bits + 1.0  # E[log i*] ≤ KL + small (Li & El Gamal)
    zipf = pfr.zipf_probabilities(1024, kl_bits * math.log(2))
    coded_bits = float(-np.log2(zipf[indices]).mean())
    assert coded_bits < kl_bits + 3.0


def test_the_decoder_regenerates_exactly_the_candidate_the_encoder_scored() -> None:
    for index in (0, 1, pfr.BLOCK - 1, pfr.BLOCK, 3 * pfr.BLOCK + 5):
        block, row = divmod(index, pfr.BLOCK)
        expected = pfr.candidate_block(3, 2, 1, block, 17)[row]
        assert torch.equal(pfr.chosen_candidate(index, 3, 2, 1, 17), expected)


def test_chunk_plans_cover_every_dimension_once_and_respect_the_chunk_size() -> None:
    for kl_bits in (0.0, 0.3, 7.9, 8.0, 100.0, 5000.0, 1e9):
        code = pfr.quantise_kl(kl_bits * math.log(2))
        assert 0 <= code <= pfr.MAX_KL_CODE
        assert pfr.planned_kl_bits(code) >= min(kl_bits, pfr.planned_kl_bits(pfr.MAX_KL_CODE))
        plan = pfr.plan_chunks(code, 3000, 10, seed=1, step=4)
        assert sum(plan.dims) == 3000 and len(plan.dims) <= 3000
        assert sorted(plan.order.tolist()) == list(range(3000))
        assert plan.kl_nats / math.log(2) <= 10 - pfr.PADDING_BITS + 1e-9 or len(plan.dims) == 3000
        assert plan.candidates == 1024
    same = pfr.plan_chunks(40, 3000, 10, seed=1, step=4)
    assert torch.equal(same.order, pfr.plan_chunks(40, 3000, 10, seed=1, step=4).order)


def diffc(**settings: object) -> object:
    config = {"name": "diffc", "model": str(tiny_pixel_prior()), "steps": 6, "stop": 4,
              "chunk_bits": 8} | settings
    return CODECS.build(CODECS.config(config))


def picture(side: int = 16, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (side, side, 3), dtype=np.uint8)


def test_decoding_the_clean_stream_gives_the_encoders_picture_bit_for_bit() -> None:
    codec = diffc()
    encoded, reconstruction = codec.encode_with_reconstruction(picture())
    decoded = codec.decode(encoded.payload, encoded.n_bits, encoded.side_info)
    assert decoded.dtype == np.uint8 and decoded.shape == (16, 16, 3)
    assert np.array_equal(decoded, reconstruction)
    again = diffc().encode(picture())
    assert again.payload == encoded.payload  # encoding is repeatable


def test_more_coded_steps_cost_more_bits() -> None:
    sizes = [diffc(stop=stop).encode(picture()).n_bits for stop in (0, 2, 4, 6)]
    assert sizes[0] == 16  # only the step count
    assert sizes == sorted(sizes) and sizes[-1] > sizes[1]


def test_a_bpp_budget_is_never_exceeded_and_is_used() -> None:
    full = diffc(stop=6).encode(picture()).n_bits
    budget_bits = full * 0.6
    encoded = diffc(stop=None, bpp=budget_bits / 256).encode(picture())
    assert encoded.n_bits <= budget_bits + 32  # ANS rounds up to whole 32-bit words
    assert encoded.n_bits > 16


def test_any_bits_decode_to_a_picture() -> None:
    codec = diffc()
    encoded = codec.encode(picture())
    info = encoded.side_info
    rng = np.random.default_rng(5)
    payloads = [b"", b"\xff", b"\xff" * 64, bytes(40), encoded.payload[:5]]
    for _ in range(20):
        damaged = bytearray(encoded.payload)
        damaged[int(rng.integers(len(damaged)))] ^= 1 << int(rng.integers(8))
        payloads.append(bytes(damaged))
    for payload in payloads:
        decoded = codec.decode(payload, 8 * len(payload), info)
        assert decoded.shape == (16, 16, 3) and decoded.dtype == np.uint8


def test_settings_need_exactly_one_rate_and_side_info_reads_back() -> None:
    from noisylink.scenarios import parse_scenario

    for codec, match in (({"name": "diffc"}, "exactly one"),
                         ({"name": "diffc", "stop": 3, "bpp": 0.1}, "exactly one"),
                         ({"name": "diffc", "steps": 4, "stop": 5}, "at most")):
        with pytest.raises(NoisylinkError, match=match):
            parse_scenario({"name": "x", "codec": codec, "channel": {"name": "bsc", "ber": 0}},
                           "test")
    info = DiffcSideInfo(16, 16, 3, "bundled", 50, 10, 0)
    assert DiffcSideInfo.from_json(info.to_json()) == info


def test_diffc_through_a_bsc_link(tmp_path: Path) -> None:
    from noisylink.link.runner import run_scenario
    from noisylink.results.file import read_rows
    from noisylink.scenarios import parse_scenario

    scenario = parse_scenario({
        "name": "dc", "seed": 1, "images": {"source": "samples", "limit": 1, "size": 16},
        "codec": {"name": "diffc", "model": str(tiny_pixel_prior()), "steps": 4, "stop": 3,
                  "chunk_bits": 6},
        "channel": {"name": "bsc", "ber": [0.0, 0.05]}, "trials": 2,
    }, "test")
    rows = read_rows(run_scenario(scenario, tmp_path / "out").results_path)
    assert len(rows) == 4
    assert all(row["decoded"] == "true" for row in rows)
    clean = [row["psnr"] for row in rows if row["channel_value"] == "0.0"]
    assert len(set(clean)) == 1
