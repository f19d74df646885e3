"""DDCM, Turbo-DDCM and Robust Turbo-DDCM as codecs: bit widths and rate control by the spec's
formulas, bit-exact decoding, batched decoding, what a flipped bit does, a decoder that survives
any bits, deterministic codebooks, and the whole link end to end.

Everything runs on the tiny random models of ``diffusion_models`` with a few steps and small
codebooks: what is checked (layouts, replay, wrapping rules) does not depend on model quality.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from fractions import Fraction
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np
import pydantic
import pytest
import torch
from diffusion_models import (
    make_tiny_stable_diffusion,
    tiny_pixel_prior,
)
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from noisylink.codecs import CODECS
from noisylink.codecs.base import Encoded
from noisylink.codecs.diffusion import codebook as codebook_module
from noisylink.codecs.diffusion.bitstream import unpack
from noisylink.codecs.diffusion.codebook import Codebook, best_atom, best_atoms
from noisylink.codecs.diffusion.codecs import DdcmCodec, RobustTurboDdcmCodec, TurboDdcmCodec
from noisylink.codecs.diffusion.sampler import shared_prefixes
from noisylink.errors import LinkError, ScenarioError
from noisylink.link.runner import build_plan, run_scenario
from noisylink.metrics import psnr
from noisylink.scenarios import parse_scenario

DiffusionCodec = DdcmCodec | TurboDdcmCodec | RobustTurboDdcmCodec
NAMES = ("ddcm", "turbo-ddcm", "robust-turbo-ddcm")
METHOD = {"ddcm": "ddcm", "turbo-ddcm": "turbo", "robust-turbo-ddcm": "robust"}


@pytest.fixture(scope="module")
def tiny_sd(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One tiny Stable Diffusion folder for this module (the latent path)."""
    return make_tiny_stable_diffusion(tmp_path_factory.mktemp("tiny-sd-codecs"))


# ---- helpers -------------------------------------------------------------------------------


def settings_for(name: str, K: int = 64, M: int | None = 4, T: int | None = 3) -> dict[str, Any]:
    """Codec settings on the tiny pixel prior; DDCM takes no M."""
    chosen: dict[str, Any] = {"name": name, "model": str(tiny_pixel_prior()), "K": K}
    if T is not None:
        chosen["T"] = T
    if name != "ddcm" and M is not None:
        chosen["M"] = M
    return chosen


def build(settings_: dict[str, Any]) -> DiffusionCodec:
    """A codec from settings, validated through the registry like a scenario's."""
    return CODECS.build(CODECS.config(settings_))  # type: ignore[return-value]


@cache
def small_codec(name: str, K: int = 64, M: int = 4, T: int = 3) -> DiffusionCodec:
    """A cached codec on the tiny pixel prior (hypothesis tests cannot take fixtures)."""
    return build(settings_for(name, K, M, T))


def picture(seed: int, height: int, width: int, channels: int = 3) -> np.ndarray:
    """A seeded uint8 picture: a gradient, a block and some noise."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width]
    base = (x * 255 // max(1, width - 1) + y * 7 + 40 * seed) % 256
    image = np.repeat(base[:, :, None], channels, axis=2).astype(np.int64)
    image[height // 4 : height // 2, width // 4 : width // 2] = 200 - 30 * seed
    image += rng.integers(-20, 21, size=image.shape)
    return np.clip(image, 0, 255).astype(np.uint8)


def ceil_log2(value: int) -> int:
    """⌈log2 value⌉ by the float formula, checked against the powers of two around it."""
    bits = math.ceil(math.log2(value))
    assert (bits == 0 and value == 1) or 2 ** (bits - 1) < value <= 2**bits
    return bits


def formula_bits_per_step(name: str, K: int, M: int) -> int:
    """The spec's per-step bits, computed here without the library's bitstream code."""
    if name == "ddcm":
        return ceil_log2(K)
    if name == "turbo-ddcm":
        return ceil_log2(math.comb(K, M)) + M
    return M * (ceil_log2(K) + 1)


def flip_bit(payload: bytes, position: int) -> bytes:
    """``payload`` with bit ``position`` (most significant bit of byte 0 first) flipped."""
    data = bytearray(payload)
    data[position // 8] ^= 0x80 >> (position % 8)
    return bytes(data)


def decode_stream(
    codec: DiffusionCodec, encoded: Encoded, payload: bytes | None = None
) -> np.ndarray:
    """Decode ``payload`` (default: the encoded one) with the stream's length and side info."""
    chosen = encoded.payload if payload is None else payload
    return codec.decode(chosen, encoded.n_bits, encoded.side_info)


def shape_of(encoded: Encoded) -> tuple[int, int, int]:
    return encoded.side_info.shape


# ---- 1. bit widths and bpp by the formulas ---------------------------------------------------

RATE_CASES = [(64, 4, 3), (100, 5, 2), (37, 3, 4), (8, 3, 2), (1000, 7, 2), (6, 6, 1)]


@pytest.mark.parametrize(("K", "M", "T"), RATE_CASES)
@pytest.mark.parametrize("name", NAMES)
def test_bit_width_and_bpp_follow_the_formulas(name: str, K: int, M: int, T: int) -> None:
    height, width = 12, 20
    codec = build(settings_for(name, K, M, T))
    encoded = codec.encode(picture(0, height, width))
    expected_bits = T * formula_bits_per_step(name, K, M)
    assert encoded.n_bits == expected_bits
    assert len(encoded.payload) == math.ceil(expected_bits / 8)
    assert encoded.n_bits / (height * width) == expected_bits / (height * width)
    padding = 8 * len(encoded.payload) - encoded.n_bits
    if padding:  # the zero padding sits at the end
        assert encoded.payload[-1] & ((1 << padding) - 1) == 0
    info = encoded.side_info
    assert (K, T, 1 if name == "ddcm" else M) == (info.K, info.T, info.M)


@pytest.mark.parametrize(("K", "M", "T"), RATE_CASES)
def test_robust_over_turbo_bpp_is_the_formulas_ratio(K: int, M: int, T: int) -> None:
    image = picture(1, 16, 16)
    turbo = build(settings_for("turbo-ddcm", K, M, T)).encode(image)
    robust = build(settings_for("robust-turbo-ddcm", K, M, T)).encode(image)
    pixels = 16 * 16
    measured = Fraction(robust.n_bits, pixels) / Fraction(turbo.n_bits, pixels)
    by_formula = Fraction(M * (ceil_log2(K) + 1), ceil_log2(math.comb(K, M)) + M)
    assert measured == by_formula


# ---- 2. rate control -------------------------------------------------------------------------


def largest_fitting_m(name: str, K: int, T: int, budget: float) -> int:
    """The largest M (up to 100 and K) whose stream fits ``budget`` bits, by the formula."""
    fitting = [
        m for m in range(1, min(100, K) + 1) if T * formula_bits_per_step(name, K, m) <= budget
    ]
    assert fitting
    return max(fitting)


@pytest.mark.parametrize("target_m", [1, 2, 5, 9])
@pytest.mark.parametrize("name", ["turbo-ddcm", "robust-turbo-ddcm"])
def test_bpp_budget_picks_the_largest_fitting_m(name: str, target_m: int) -> None:
    K, T, height, width = 64, 3, 16, 16
    pixels = height * width
    exact = T * formula_bits_per_step(name, K, target_m)
    for budget_bits, expected in ((exact, target_m), (exact - 0.5, target_m - 1)):
        if expected < 1:
            continue
        codec = build(settings_for(name, K, None, T) | {"bpp": budget_bits / pixels})
        M, chosen_t = codec.rate(height, width)
        assert (M, chosen_t) == (expected, T)
        assert largest_fitting_m(name, K, T, budget_bits) == M
        assert T * formula_bits_per_step(name, K, M) <= budget_bits
        assert T * formula_bits_per_step(name, K, M + 1) > budget_bits
    codec = build(settings_for(name, K, None, T) | {"bpp": exact / pixels})
    encoded = codec.encode(picture(2, height, width))
    assert target_m == encoded.side_info.M and encoded.n_bits == exact


@pytest.mark.parametrize("target_t", [1, 4, 7])
def test_bpp_budget_picks_the_largest_fitting_t_for_ddcm(target_t: int) -> None:
    K, height, width = 64, 16, 16
    pixels = height * width
    per_step = ceil_log2(K)
    exact = target_t * per_step
    for budget_bits, expected in ((exact, target_t), (exact - 1, target_t - 1)):
        if expected < 1:
            continue
        codec = build(settings_for("ddcm", K, None, None) | {"bpp": budget_bits / pixels})
        assert codec.rate(height, width) == (1, expected)
        assert expected * per_step <= budget_bits < (expected + 1) * per_step
    codec = build(settings_for("ddcm", K, None, None) | {"bpp": exact / pixels})
    encoded = codec.encode(picture(3, height, width))
    assert target_t == encoded.side_info.T and encoded.n_bits == exact


def test_ddcm_budget_caps_t_at_the_config_limit() -> None:
    codec = build(settings_for("ddcm", 64, None, None) | {"bpp": 64.0})
    assert codec.rate(16, 16) == (1, 1000)  # 16384 bits would allow 2730 steps


@pytest.mark.parametrize("name", NAMES)
def test_unmeetable_budget_raises_link_error(name: str) -> None:
    codec = build(settings_for(name, 64, None, 3 if name != "ddcm" else None) | {"bpp": 0.01})
    with pytest.raises(LinkError, match="cannot meet"):
        codec.rate(16, 16)
    with pytest.raises(LinkError, match="cannot meet"):
        codec.encode(picture(0, 16, 16))


BAD_SETTINGS = [
    {"name": "turbo-ddcm", "M": 4, "bpp": 0.5},
    {"name": "robust-turbo-ddcm", "M": 4, "bpp": 0.5},
    {"name": "ddcm", "T": 4, "bpp": 0.5},
    {"name": "ddcm", "M": 4},
    {"name": "turbo-ddcm", "K": 8, "M": 9},
    {"name": "robust-turbo-ddcm", "K": 1},
    {"name": "turbo-ddcm", "bpp": 0},
    {"name": "ddcm", "bpp": float("inf")},
]


@pytest.mark.parametrize("bad", BAD_SETTINGS, ids=lambda s: ",".join(map(str, s.values())))
def test_invalid_rate_settings_are_config_errors(bad: dict[str, Any]) -> None:
    with pytest.raises(ScenarioError):  # what a scenario author sees
        CODECS.config(bad)
    with pytest.raises(pydantic.ValidationError):  # the config model underneath
        CODECS.entry(bad["name"]).config_model.model_validate(bad)


def test_t_with_bpp_is_fine_for_turbo() -> None:
    config = CODECS.config({"name": "turbo-ddcm", "T": 5, "bpp": 0.5})
    assert config.T == 5 and config.bpp == 0.5  # type: ignore[attr-defined]


# ---- 3. exactness: the decoder shows the encoder's reconstruction ----------------------------


def assert_decodes_exactly(codec: DiffusionCodec, images: Sequence[np.ndarray]) -> None:
    """Encode ``images`` together, decode them as one batch, compare bit for bit."""
    encoded, pictures = codec.encode_with_reconstructions(images)
    decoded = codec.decode_batch([(e.payload, e.n_bits, e.side_info) for e in encoded])
    assert len(decoded) == len(images)
    for image, got, want in zip(images, decoded, pictures, strict=True):
        assert got.dtype == np.uint8 and got.shape == image.shape == want.shape
        assert np.array_equal(got, want)
    if len(images) == 1:
        assert np.array_equal(decode_stream(codec, encoded[0]), pictures[0])
        assert codec.encode(images[0]).payload == encoded[0].payload


@pytest.mark.parametrize("batch", [1, 3])
@pytest.mark.parametrize("channels", [3, 1])
@pytest.mark.parametrize("name", NAMES)
def test_clean_decode_is_the_encoders_reconstruction(name: str, channels: int, batch: int) -> None:
    codec = small_codec(name)
    images = [picture(seed, 16, 20, channels) for seed in range(batch)]
    assert_decodes_exactly(codec, images)


@pytest.mark.parametrize("batch", [1, 3])
@pytest.mark.parametrize("name", NAMES)
def test_clean_decode_is_exact_on_the_latent_path(tiny_sd: Path, name: str, batch: int) -> None:
    codec = build(settings_for(name) | {"model": str(tiny_sd)})
    assert codec.backbone.kind == "latent"
    assert_decodes_exactly(codec, [picture(seed, 16, 16) for seed in range(batch)])
    assert_decodes_exactly(codec, [picture(seed, 16, 24, 1) for seed in range(batch)])


# ---- 4. batched decoding of many copies ------------------------------------------------------


@pytest.mark.parametrize("channels", [3, 1])
@pytest.mark.parametrize("name", NAMES)
def test_batched_copies_match_one_by_one(name: str, channels: int) -> None:
    """B corrupted copies of one stream (a sweep's trials) decode together exactly as they
    would alone (the model runs in fixed-size calls, see ``in_fixed_batches``)."""
    codec = small_codec(name)
    encoded = codec.encode(picture(4, 32, 32, channels))
    flips = [flip_bit(encoded.payload, p) for p in (0, 5, encoded.n_bits - 1)]
    copies = [encoded.payload, flips[0], encoded.payload, flips[1], flips[2], encoded.payload]
    together = codec.decode_batch([(c, encoded.n_bits, encoded.side_info) for c in copies])
    alone = [decode_stream(codec, encoded, c) for c in copies]
    for got, want in zip(together, alone, strict=True):
        assert got.shape == want.shape and got.dtype == np.uint8
        assert np.array_equal(got, want)
    for index in (2, 5):  # identical streams in one batch give identical pictures
        assert np.array_equal(together[index], together[0])


# ---- 5. robust: one flipped bit, one changed field -------------------------------------------


def test_robust_single_flip_changes_one_field() -> None:
    K, M, T = 37, 3, 2  # K not a power of two: some flipped indices wrap modulo K
    codec = small_codec("robust-turbo-ddcm", K, M, T)
    encoded = codec.encode(picture(6, 16, 16))
    field = ceil_log2(K) + 1
    assert encoded.n_bits == T * M * field == 42 and len(encoded.payload) == 6
    clean_index, clean_sign = unpack("robust", K, M, T, encoded.payload)
    clean_picture = decode_stream(codec, encoded)
    for position in range(8 * len(encoded.payload)):
        flipped = flip_bit(encoded.payload, position)
        index, sign = unpack("robust", K, M, T, flipped)
        index_changed, sign_changed = index != clean_index, sign != clean_sign
        shown = decode_stream(codec, encoded, flipped)
        if position >= encoded.n_bits:  # zero padding: nothing changes
            assert not index_changed.any() and not sign_changed.any()
            assert np.array_equal(shown, clean_picture)
            continue
        step, atom = divmod(position // field, M)
        assert index_changed.sum() + sign_changed.sum() == 1
        if position % field == field - 1:
            assert sign_changed[step, atom]
        else:
            assert index_changed[step, atom]
            assert 0 <= index[step, atom] < K
        assert not np.array_equal(shown, clean_picture)


# ---- 6. turbo: the rank's top bit moves the whole set ----------------------------------------


def test_turbo_rank_msb_flip_changes_many_atoms() -> None:
    K, M, T = 64, 4, 3
    codec = small_codec("turbo-ddcm", K, M, T)
    encoded = codec.encode(picture(7, 16, 16))
    width = ceil_log2(math.comb(K, M))
    clean_index, clean_sign = unpack("turbo", K, M, T, encoded.payload)
    changed_atoms = []
    for step in range(T):
        flipped = flip_bit(encoded.payload, step * (width + M))
        index, sign = unpack("turbo", K, M, T, flipped)
        others = [t for t in range(T) if t != step]
        assert np.array_equal(index[others], clean_index[others])
        assert np.array_equal(sign, clean_sign)
        changed_atoms.append(M - len(set(index[step]) & set(clean_index[step])))
        assert decode_stream(codec, encoded, flipped).shape == shape_of(encoded)
    assert min(changed_atoms) >= 1
    assert max(changed_atoms) > 1


# ---- 7. any bits decode to a picture ---------------------------------------------------------


@st.composite
def corruptions(draw: st.DrawFn, payload: bytes) -> bytes:
    """``payload`` flipped at some rate, zeroed, set to ones, truncated or replaced."""
    kind = draw(st.sampled_from(["flip", "zeros", "ones", "truncate", "garbage"]))
    if kind == "flip":
        rate = draw(st.floats(0.0, 0.5))
        seed = draw(st.integers(0, 2**32 - 1))
        bits = np.unpackbits(np.frombuffer(payload, dtype=np.uint8))
        mask = np.random.default_rng(seed).random(bits.size) < rate
        return np.packbits(bits ^ mask.astype(np.uint8)).tobytes()
    if kind == "zeros":
        return bytes(len(payload))
    if kind == "ones":
        return b"\xff" * len(payload)
    if kind == "truncate":
        return payload[: draw(st.integers(0, len(payload)))]
    return draw(st.binary(max_size=3 * len(payload) + 4))


@pytest.mark.slow
@pytest.mark.parametrize("name", NAMES)
@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_any_corruption_decodes_to_a_picture(name: str, data: st.DataObject) -> None:
    codec = small_codec(name, 37, 3, 2)
    encoded = encoded_sample(name)
    bad = data.draw(corruptions(encoded.payload), label="payload")
    expected = shape_of(encoded)
    single = codec.decode(bad, encoded.n_bits, encoded.side_info)
    assert single.dtype == np.uint8 and single.shape == expected
    streams = [
        (bad, encoded.n_bits, encoded.side_info),
        (encoded.payload, encoded.n_bits, encoded.side_info),
    ]
    batch = codec.decode_batch(streams)
    assert len(batch) == 2
    assert all(p.dtype == np.uint8 and p.shape == expected for p in batch)


@cache
def encoded_sample(name: str) -> Encoded:
    """The fuzzed stream: a gray 12x16 picture, K not a power of two."""
    return small_codec(name, 37, 3, 2).encode(picture(8, 12, 16, 1))


# ---- 8. determinism and codebooks ------------------------------------------------------------


@pytest.mark.parametrize("name", NAMES)
def test_same_image_same_payload(name: str) -> None:
    image = picture(9, 16, 16)
    first = small_codec(name).encode(image)
    assert small_codec(name).encode(image).payload == first.payload
    fresh = build(settings_for(name))
    assert fresh is not small_codec(name)
    assert fresh.encode(image.copy()).payload == first.payload


def full_codebook(codebook: Codebook, step: int) -> torch.Tensor:
    """Every atom of one step, [K, dim], from its chunks."""
    return torch.cat([codebook.chunk(step, c) for c in range(codebook.n_chunks)])


def test_chunks_depend_only_on_seed_step_and_chunk() -> None:
    small, large = Codebook(3, 40, 10, 8), Codebook(3, 100, 10, 8)
    reference = small.chunk(2, 1)
    assert reference.shape == (8, 10) and reference.dtype == torch.float32
    torch.manual_seed(12345)  # the global generator plays no part
    large.chunk(0, 0)  # nor does what was generated before
    assert torch.equal(large.chunk(2, 1), reference)
    assert torch.equal(small.chunk(2, 1), reference)
    for other in (Codebook(4, 40, 10, 8).chunk(2, 1), small.chunk(3, 1), small.chunk(2, 2)):
        assert not torch.equal(other, reference)


@pytest.mark.parametrize(("K", "chunk_atoms"), [(20, 8), (20, 3), (20, 1), (20, 64), (45, 7)])
def test_atoms_are_rows_of_the_chunks(K: int, chunk_atoms: int) -> None:
    codebook = Codebook(seed=1, K=K, dim=6, chunk_atoms=chunk_atoms)
    full = full_codebook(codebook, step=4)
    assert full.shape == (K, 6)
    indices = np.array([[0, K - 1, 3, 3], [K // 2, 1, K - 2, 0]])
    atoms = codebook.atoms(4, indices)
    assert atoms.shape == (2, 4, 6)
    assert torch.equal(atoms, full[torch.from_numpy(indices)])
    blocks = torch.cat([block.clone() for _, block in codebook.blocks(4, block_atoms=5)])
    assert torch.equal(blocks, full)


@pytest.mark.parametrize(("K", "chunk_atoms"), [(20, 8), (20, 3), (20, 1), (20, 64), (1100, 7)])
def test_best_atoms_match_a_brute_force_projection(K: int, chunk_atoms: int) -> None:
    codebook = Codebook(seed=5, K=K, dim=24, chunk_atoms=chunk_atoms)
    step, M = 1, 5
    full = full_codebook(codebook, step).double().numpy()
    residuals = torch.randn(4, 24, generator=torch.Generator().manual_seed(7))
    scores = residuals.double().numpy() @ full.T  # [B, K]

    assert np.array_equal(best_atom(codebook, step, residuals)[:, 0], scores.argmax(axis=1))

    index, signs = best_atoms(codebook, step, residuals, M)
    expected = np.sort(np.argsort(-np.abs(scores), axis=1)[:, :M], axis=1)
    assert np.array_equal(index, expected)
    expected_signs = np.where(np.take_along_axis(scores, expected, axis=1) >= 0, 1, -1)
    assert np.array_equal(signs, expected_signs)



def test_search_blocks_hold_at_most_their_budget_or_one_chunk() -> None:
    """At 512 x 512 (D = 786432) a block is 40 atoms (126 MB), not 512 (1.6 GB)."""
    budget = codebook_module.PROJECTION_BLOCK_BYTES
    for dim in (12, 3 * 64 * 64, 3 * 512 * 512, 3 * 2048 * 2048):
        for chunk_atoms in (1, 8, 4096):
            codebook = Codebook(seed=0, K=16384, dim=dim, chunk_atoms=chunk_atoms)
            atoms = codebook.block_atoms()
            assert atoms % chunk_atoms == 0 and chunk_atoms <= atoms <= 16384
            assert 4 * atoms * dim <= max(budget, 4 * chunk_atoms * dim)
            assert atoms <= max(codebook_module.PROJECTION_BLOCK_ATOMS, chunk_atoms)
    assert Codebook(0, 16384, 3 * 512 * 512, 8).block_atoms() == 40


@pytest.mark.parametrize("budget_atoms", [1, 7, 16, 1000])
def test_blocks_within_a_budget_are_the_chunks(
    budget_atoms: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Blocks drawn within any byte budget are the chunks, in order, each atom once."""
    codebook = Codebook(seed=2, K=45, dim=10, chunk_atoms=4)
    full = full_codebook(codebook, step=3)
    monkeypatch.setattr(codebook_module, "PROJECTION_BLOCK_BYTES", 4 * 10 * budget_atoms)
    starts, blocks = zip(*[(start, b.clone()) for start, b in codebook.blocks(3)], strict=True)
    assert torch.equal(torch.cat(blocks), full)
    assert list(starts) == sorted(set(starts)) and starts[0] == 0


@pytest.mark.parametrize("batch", [1, 3])
def test_the_chosen_atoms_do_not_depend_on_the_block_or_the_batch(
    batch: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """At D = 49152 (128 x 128 x 3) the search picks the same atoms whatever the block size
    (one chunk to the whole codebook) and the batch, and its inner products stay within float32
    rounding of a float64 product: an error of at most 1e-5 of ‖x‖·‖a‖ (a misplaced or missing
    atom is off by the size of the product itself). Exact bits are not claimed: the BLAS kernel's
    summation order may change with the block's shape and the CPU (it did on two machines),
    which moves a choice only on a near-tie."""
    dim = 3 * 128 * 128
    codebook = Codebook(seed=11, K=256, dim=dim, chunk_atoms=8)
    generator = torch.Generator().manual_seed(11)
    residuals = torch.randn(3, dim, generator=generator)[:batch]
    atoms = full_codebook(codebook, step=0)
    whole = residuals.double() @ atoms.double().T
    rounding = 1e-5 * residuals.double().norm(dim=1)[:, None] * atoms.double().norm(dim=1)[None, :]
    expected_best = whole.argmax(dim=1).numpy()
    expected_top = torch.sort(whole.abs().topk(5, dim=1).indices, dim=1).values.numpy()
    for budget_atoms in (8, 24, 64, 208, 256):
        monkeypatch.setattr(codebook_module, "PROJECTION_BLOCK_BYTES", 4 * dim * budget_atoms)
        rows = codebook_module.at_least_two_rows(residuals)
        parts = [codebook_module.inner_products(rows, block, batch).clone()
                 for _, block in codebook.blocks(0)]
        assert ((torch.cat(parts, dim=1).double() - whole).abs() <= rounding).all()
        assert np.array_equal(best_atom(codebook, 0, residuals)[:, 0], expected_best)
        index, _ = best_atoms(codebook, 0, residuals, 5)
        assert np.array_equal(index, expected_top)


# The payloads of the bundled prior on two 32 x 32 pictures (K = 256, T = 2, M = 4, seed 3),
# as the search gave them before its blocks were sized by a byte budget (cd9ef3a).
PINNED_PAYLOADS = {
    "ddcm": ("3c51", "2db8"),
    "turbo-ddcm": ("472db8908341036e", "51a924803c934435"),
    "robust-turbo-ddcm": ("21139fddc51c4e4b52", "27259fddc1b14e3d71"),
}


@pytest.mark.parametrize("name", NAMES)
def test_payload_bytes_are_pinned(name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """The bundled prior's payloads stay byte for byte what they were, alone or in a batch,
    in one block or in blocks of five chunks."""
    chosen: dict[str, Any] = {"name": name, "model": "bundled", "K": 256, "T": 2, "seed": 3}
    if name != "ddcm":
        chosen["M"] = 4
    codec = build(chosen)
    pictures = [picture(1, 32, 32), picture(2, 32, 32)]
    expected = list(PINNED_PAYLOADS[name])
    assert [e.payload.hex() for e in codec.encode_batch(pictures)] == expected
    assert codec.encode(pictures[0]).payload.hex() == expected[0]
    monkeypatch.setattr(codebook_module, "PROJECTION_BLOCK_BYTES", 4 * 3 * 32 * 32 * 40)
    assert [e.payload.hex() for e in codec.encode_batch(pictures)] == expected
    assert codec.encode(pictures[1]).payload.hex() == expected[1]

# ---- 9. the link end to end ------------------------------------------------------------------


def test_turbo_ddcm_through_the_link(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[int] = []
    original = TurboDdcmCodec.encode_batch

    def counting(self: TurboDdcmCodec, images: Sequence[np.ndarray]) -> list[Encoded]:
        calls.append(len(images))
        return original(self, images)

    monkeypatch.setattr(TurboDdcmCodec, "encode_batch", counting)
    scenario = parse_scenario(
        {
            "name": "rcc-link",
            "seed": 1,
            "images": {"source": "samples", "resize": 32, "size": 32, "limit": 2},
            "codec": settings_for("turbo-ddcm", 64, 4, 3),
            "frames": {"payload_bytes": 8, "header": "ideal"},
            "ecc": {"name": "none"},
            "channel": {"name": "bsc", "ber": [0.0, 0.01]},
            "trials": 3,
            "device": "cpu",
        },
        "test",
    )
    rows = run_scenario(scenario, tmp_path / "out").rows
    assert len(rows) == 2 * 2 * 3
    assert calls == [2]  # both images at once, once for the codec setting (both channel cells)
    assert all(row.decoded is True and row.decode_error == "" for row in rows)
    clean = [row for row in rows if row.channel_value == 0.0]
    assert len(clean) == 6 and all(row.post_ber == 0.0 for row in clean)
    sources = [image.pixels for image in build_plan(scenario).images]
    _, pictures = build(settings_for("turbo-ddcm", 64, 4, 3)).encode_with_reconstructions(sources)
    names = [image.name for image in build_plan(scenario).images]
    for name, source, reconstruction in zip(names, sources, pictures, strict=True):
        psnrs = {row.psnr for row in clean if row.image == name}
        assert psnrs == {psnr(source, reconstruction)}  # the encoder's picture, bit for bit
    bits = 3 * (ceil_log2(math.comb(64, 4)) + 4)
    assert all(row.source_bits == bits for row in rows)
    assert all(row.bpp_source == bits / (32 * 32) for row in rows)


# ---- shared trajectories of a sweep's trials -------------------------------------------------


def test_shared_prefixes_map_rows_to_their_first_twin() -> None:
    choices = np.array(
        [[[1], [2], [3]], [[1], [5], [3]], [[1], [2], [3]], [[4], [2], [3]]], dtype=np.int64
    )
    same_as = shared_prefixes(choices, 5)
    assert same_as[0].tolist() == [0, 0, 0, 0]  # nothing chosen yet: one trajectory
    assert same_as[1].tolist() == [0, 0, 0, 3]  # row 3 left at step 0
    assert same_as[2].tolist() == [0, 1, 0, 3]  # row 1 left at step 1
    assert same_as[3].tolist() == same_as[4].tolist() == [0, 1, 0, 3]


@pytest.mark.parametrize("name", NAMES)
def test_identical_copies_cost_one_decode(name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Copies run the model only where their trajectories differ."""
    codec = small_codec(name)
    encoded = codec.encode(picture(2, 16, 16))
    calls: list[int] = []
    original = type(codec.backbone).model_output

    def counting(self, x: torch.Tensor, t: int) -> torch.Tensor:
        calls.append(x.shape[0])
        return original(self, x, t)

    monkeypatch.setattr(type(codec.backbone), "model_output", counting)
    codec.decode(encoded.payload, encoded.n_bits, encoded.side_info)
    alone = sum(calls)
    calls.clear()
    stream = (encoded.payload, encoded.n_bits, encoded.side_info)
    codec.decode_batch([stream] * 4)
    assert sum(calls) == alone
    calls.clear()
    last_bit = flip_bit(encoded.payload, encoded.n_bits - 1)  # changes only the last step
    codec.decode_batch([stream, (last_bit, encoded.n_bits, encoded.side_info)])
    assert sum(calls) == alone + 1 + codec.config.N  # the final evaluations diverge
