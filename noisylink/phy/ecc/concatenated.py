"""Concatenated code, as deep-space links use it: RS(255, k) outer code, symbol interleaving of
depth I, and an inner convolutional (K=7, any rate) or LDPC code (CCSDS 131.0-B).

``{name: concatenated, outer: {name: rs, k: 223}, depth: 5, inner: {name: conv, rate: "1/2"}}``
(those are the defaults; ``depth`` 1..8, ``inner`` ``conv`` or ``ldpc`` with their own
settings). Bits: uint8 0/1; LLRs: float, positive means 0.

One block is ``I`` RS codewords: ``k = 8 * I * k_rs`` information bits, codeword ``i`` taking
the ``i``-th run of ``k_rs`` bytes. The ``I * 255`` code bytes are symbol-interleaved as in
CCSDS: byte ``j`` of the interleaved frame is byte ``j // I`` of codeword ``j mod I``, so a burst
of ``b`` bytes after the inner decoder puts at most ``ceil(b / I)`` errors into each codeword
(all ``I * t`` bytes of a burst of ``I * t`` are corrected, ``t = (255 - k_rs) // 2``). The
frame's ``8 * 255 * I`` bits are then encoded by the inner code:

- ``conv``: one zero-tail terminated block per frame, ``block_bits = 8 * 255 * I`` (set here;
  an inner ``block_bits`` given in the settings must equal it), punctured to its ``rate``.
- ``ldpc``: ``m = ceil(8 * 255 * I / k_ldpc)`` codewords per frame, the last one filled up with
  zero bits (sent, and counted in ``n``; the decoder drops them).

So ``n = m * n_inner`` coded bits per block, ``rate = k / n`` (``8 * 223 / (2 * (2040 * 5 +
6))`` = 0.4369 for the defaults).

Decoding: soft inner decoding (Viterbi or LDPC), hard bytes, de-interleaving, then the RS
errors-and-erasures decoder (``rs``'s backend). Where the inner decoder reports a failed block
(LDPC ``ok`` False) its bits get LLR 0, the RS decoder's erasure mark, and each RS codeword
that then fails is decoded once more from the hard bytes alone, keeping whichever decoding
succeeds (see ``decode``; measured in docs/measured.md). Viterbi cannot tell its failures, so a
conv inner code marks no erasures. ``ok`` per block: all ``I`` RS codewords decoded (the RS
decoder verifies each corrected word). Channel errors (NaN/inf LLRs, all erasures) never raise:
the inner decoders clean their LLRs (``clean_llr``). All-erased input decodes to zero bits,
which form valid RS codewords, so its ``ok`` is True (the frame CRC then decides).
"""

from __future__ import annotations

import functools
from typing import Annotated, Any, Literal

import numpy as np
import pydantic
from numpy.typing import NDArray

from noisylink.phy.ecc.base import ECC, ECCS, Bits, LLRs, block_coded_bits, pad_to_blocks
from noisylink.phy.ecc.convolutional.code import ConvolutionalConfig
from noisylink.phy.ecc.ldpc.code import LDPCConfig
from noisylink.phy.ecc.reed_solomon.code import N_BYTES, ReedSolomonConfig
from noisylink.registry import ComponentConfig


def _inner_name(value: Any) -> Any:
    """The ``name`` of an inner code's settings (a mapping or a config)."""
    return value.get("name") if isinstance(value, dict) else getattr(value, "name", None)


InnerConfig = Annotated[
    Annotated[ConvolutionalConfig, pydantic.Tag("conv")]
    | Annotated[LDPCConfig, pydantic.Tag("ldpc")],
    pydantic.Discriminator(
        _inner_name,
        custom_error_type="inner_code",
        custom_error_message="inner code must be 'conv' or 'ldpc'",
    ),
]


class ConcatenatedConfig(ComponentConfig):
    """``{name: concatenated, outer: {name: rs, k: 223}, depth: 5, inner: {name: conv}}``."""

    name: Literal["concatenated"] = "concatenated"
    outer: ReedSolomonConfig = pydantic.Field(
        default_factory=lambda: ReedSolomonConfig.model_validate({"name": "rs"})
    )
    depth: int = pydantic.Field(5, ge=1, le=8)
    inner: InnerConfig = pydantic.Field(
        default_factory=lambda: ConvolutionalConfig.model_validate({"name": "conv"})
    )

    @pydantic.model_validator(mode="after")
    def _outer_is_whole(self) -> ConcatenatedConfig:
        if self.outer.shortened:
            raise ValueError("outer.shortened: the outer codewords fill the interleaved frame "
                             "whole; shorten the frames instead (frames.payload_bytes)")
        return self

    @pydantic.model_validator(mode="after")
    def _conv_block_is_the_frame(self) -> ConcatenatedConfig:
        inner = self.inner
        frame_bits = 8 * N_BYTES * self.depth
        if (
            isinstance(inner, ConvolutionalConfig)
            and "block_bits" in inner.model_fields_set
            and inner.block_bits != frame_bits
        ):
            raise ValueError(
                f"inner.block_bits is the interleaved frame, 8 * 255 * depth = {frame_bits}: "
                "leave it out"
            )
        return self

    def inner_params(self) -> dict[str, Any]:
        """The inner code's settings as labels show them (``block_bits`` is implied)."""
        params = self.inner.params()
        params.pop("block_bits", None)
        return params

    def params(self) -> dict[str, Any]:
        return {
            "outer": self.outer.params(),
            "depth": self.depth,
            "inner": {"name": self.inner.name, **self.inner_params()},
        }

    def label(self) -> str:
        """E.g. ``concatenated(rs(k=223),I=5,conv)``."""
        inner = self.inner_params()
        inner_label: str = self.inner.name
        if inner:
            inner_label += "(" + ",".join(f"{key}={value}" for key, value in inner.items()) + ")"
        return f"{self.name}({self.outer.label()},I={self.depth},{inner_label})"


@ECCS.register("concatenated", ConcatenatedConfig)
class Concatenated:
    """RS outer code, depth-I byte interleaving, conv or LDPC inner code (module docstring)."""

    def __init__(self, config: ConcatenatedConfig):
        self.config = config
        self.depth = config.depth
        self.frame_bits = 8 * N_BYTES * config.depth
        self.outer: ECC = ECCS.build(config.outer)
        inner_config: ComponentConfig = config.inner
        if isinstance(inner_config, ConvolutionalConfig):
            inner_config = inner_config.model_copy(update={"block_bits": self.frame_bits})
        self.inner: ECC = ECCS.build(inner_config)
        self.inner_blocks = -(-self.frame_bits // self.inner.k)  # per frame
        self.k = config.depth * self.outer.k
        self.n = self.inner_blocks * self.inner.n

    @property
    def rate(self) -> float:
        return self.k / self.n

    @functools.cached_property
    def marks_erasures(self) -> bool:
        """Whether the inner decoder reports failed blocks (LDPC), whose bytes become erasures."""
        return not isinstance(self.config.inner, ConvolutionalConfig)

    def coded_bits(self, n_info_bits: int) -> int:
        return block_coded_bits(n_info_bits, self.k, self.n)

    def encode(self, bits: Bits) -> Bits:
        blocks = pad_to_blocks(np.asarray(bits, dtype=np.uint8), self.k)
        n_blocks = blocks.shape[0]
        codewords = self.outer.encode(blocks.reshape(-1))  # [B * I * 2040], codeword by codeword
        frames = interleave_bytes(codewords.reshape(n_blocks, self.depth, N_BYTES, 8))
        inner_bits = np.zeros((n_blocks, self.inner_blocks * self.inner.k), dtype=np.uint8)
        inner_bits[:, : self.frame_bits] = frames.reshape(n_blocks, self.frame_bits)
        return self.inner.encode(inner_bits.reshape(-1))

    def decode(self, llr: LLRs) -> tuple[Bits, NDArray[np.bool_]]:
        """Inner decoding, de-interleaving, RS decoding with erasures where the inner code
        failed; a codeword that fails with erasures is decoded again without them."""
        bits, inner_ok = self.inner.decode(llr)
        n_blocks = inner_ok.size // self.inner_blocks
        frames = bits.reshape(n_blocks, -1)[:, : self.frame_bits]
        hard = 1.0 - 2.0 * frames.astype(np.float64)  # +-1: RS reads only signs and zeros
        words = deinterleave_bytes(hard.reshape(n_blocks, N_BYTES, self.depth, 8))
        words = words.reshape(n_blocks * self.depth, 8 * N_BYTES)
        if self.marks_erasures and not inner_ok.all():
            failed = np.repeat(~inner_ok.reshape(n_blocks, self.inner_blocks), self.inner.k, 1)
            erased = deinterleave_bytes(
                failed[:, : self.frame_bits].reshape(n_blocks, N_BYTES, self.depth, 8)
            ).reshape(words.shape)
            decoded, ok = self.outer.decode(np.where(erased, 0.0, words).reshape(-1))
            retry = ~ok & erased.any(axis=1)
            if retry.any():  # errors only, from the same hard bytes; kept even if it fails,
                # since a failed word comes back as received (its erased bits would read 0)
                again, again_ok = self.outer.decode(words[retry].reshape(-1))
                decoded = decoded.reshape(words.shape[0], -1)
                decoded[retry] = again.reshape(-1, self.outer.k)
                ok[retry] = again_ok
                decoded = decoded.reshape(-1)
        else:
            decoded, ok = self.outer.decode(words.reshape(-1))
        return decoded, np.asarray(ok.reshape(n_blocks, self.depth).all(axis=1), dtype=bool)


def interleave_bytes(codewords: NDArray[Any]) -> NDArray[Any]:
    """``[B, I, 255, 8]`` codeword bits -> ``[B, 255, I, 8]``: byte ``j = I * p + i`` of the
    frame is byte ``p`` of codeword ``i`` (byte ``j`` comes from codeword ``j mod I``)."""
    return np.ascontiguousarray(codewords.transpose(0, 2, 1, 3))


def deinterleave_bytes(frames: NDArray[Any]) -> NDArray[Any]:
    """The inverse of ``interleave_bytes``: ``[B, 255, I, 8]`` -> ``[B, I, 255, 8]``."""
    return np.ascontiguousarray(frames.transpose(0, 2, 1, 3))
