"""One results row: the schema of ``results.csv``, its CSV form, and its column table.

A row is one (cell, image, trial) stream. Its fields, in order, are the file's columns; each
field's ``doc`` is the column's meaning, and ``docs/results.md`` shows the table that
``columns_table()`` makes from them (a test keeps the two equal). In the file, ``bool`` is
``true``/``false``, a ``float`` is Python's ``repr`` (``nan`` where a metric is undefined, e.g.
MS-SSIM of small images; a blank number reads as ``nan``), text is made single-line.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import Any, get_type_hints


def column(doc: str) -> Any:
    """A field of ``ResultRow``, with the meaning of its column."""
    return field(metadata={"doc": doc})


@dataclass(frozen=True)
class ResultRow:
    """The figures of one (cell, image, trial) stream, labelled with everything that made
    them."""

    scenario: str = column("the scenario's name")
    setting: str = column(
        "16 hex digits of a hash of what, besides the cell and the image, shapes the row's "
        "numbers: every scenario field except `name`, `description`, `trials`, `device`, the "
        "grid settings (`cell_id` covers them) and `images.limit`, plus the noisylink version. "
        "`device` is left out because results are meant not to depend on it (the diffusion and "
        "JSCC networks may differ in the last bits between CPU and GPU)")
    cell: int = column("the cell's index in the scenario's grid")
    cell_id: str = column("12 hex digits of a hash of the cell's settings, stable across runs")
    codec: str = column("the codec's registered name")
    codec_label: str = column("the codec with the settings that differ from its defaults")
    codec_params: str = column("the codec's settings, JSON")
    ecc: str = column("the ECC's label")
    ecc_params: str = column("the ECC's settings, JSON")
    ecc_rate: float = column("the ECC's code rate k/n")
    interleaver: str = column("the interleaver's label")
    modulation: str = column("the modulation's label (blank on bit channels)")
    channel: str = column("the channel's registered name")
    channel_params: str = column("the channel's settings, JSON")
    channel_param: str = column("the channel setting the grid varies")
    channel_value: float = column("its value in this cell")
    trial: int = column("the trial (each has its own random streams)")
    image: str = column("the image's name")
    image_id: str = column(
        "16 hex digits of a hash of the image's place in the list, which keys its random "
        "streams, and of its shaped pixels")
    width: int = column("the image's width in pixels")
    height: int = column("the image's height in pixels")
    source_bits: int = column("the codec's payload bits")
    overhead_bits: int = column(
        "everything sent that is neither source nor parity: CRCs, inband headers, "
        "ECC/interleaver/symbol padding")
    parity_bits: int = column("ECC redundancy (n − k per block)")
    class_parity_bits: str = column(
        "`parity_bits` by protection class, most important first, `/`-separated (one figure "
        "unless `ecc` is `unequal`)")
    channel_bits: int = column("bits sent: `source_bits + overhead_bits + parity_bits`")
    channel_uses: int = column("symbols sent (= `channel_bits` on bit channels)")
    bpp_source: float = column("`source_bits / pixels`")
    bpp_channel: float = column("`channel_bits / pixels`")
    ecc_overhead: float = column("`parity_bits / channel_bits`")
    raw_ber: float = column(
        "hard-decision errors on the channel bits before ECC (erasures count as errors)")
    post_ber: float = column("bit errors in the payload handed to the codec")
    frames: int = column("frames sent")
    frames_crc_failed: int = column("frames whose payload CRC failed")
    frames_lost: int = column("frames of which no usable chunk arrived")
    ecc_blocks_failed: int = column("ECC blocks the decoder reported as failed")
    decoded: bool = column(
        "whether the codec made a picture from what arrived (see "
        "[Undecodable](scenarios.md#conventions))")
    decode_error: str = column("why not (blank when decoded)")
    psnr: float = column("PSNR against the source image, dB")
    ssim: float = column("SSIM against the source image")
    ms_ssim: float = column("MS-SSIM against the source image (`nan` below 161 px)")
    mse: float = column(
        "MSE per pixel value on the 0–255 scale (the JSCC papers' per-image L2 is "
        "`mse × pixels / 255²`)")
    encode_s: float = column("codec encode time, s")
    ecc_decode_s: float = column("ECC/PHY receive time, s")
    decode_s: float = column("codec decode time, s")

    def csv_fields(self) -> list[str]:
        """The row's values as the file writes them, in column order."""
        return [format_value(getattr(self, name)) for name in COLUMNS]

    @classmethod
    def from_csv(cls, values: dict[str, str]) -> ResultRow:
        """The row of one line of the file; ``ValueError`` names the first bad column."""
        parsed: dict[str, Any] = {}
        for name in COLUMNS:
            text, kind = values[name], _TYPES[name]
            if kind is int:
                try:
                    parsed[name] = int(text)
                except ValueError:
                    raise ValueError(f"column {name} is not an integer: {text!r}") from None
            elif kind is float:
                try:
                    parsed[name] = float(text) if text.strip() else math.nan
                except ValueError:
                    raise ValueError(f"column {name} is not a number: {text!r}") from None
            elif kind is bool:
                if text not in ("true", "false"):
                    raise ValueError(f"column {name} is not true/false: {text!r}")
                parsed[name] = text == "true"
            else:
                parsed[name] = text
        return cls(**parsed)


COLUMNS: tuple[str, ...] = tuple(f.name for f in dataclasses.fields(ResultRow))
_TYPES: dict[str, type] = {name: get_type_hints(ResultRow)[name] for name in COLUMNS}
TIMING_COLUMNS = ("encode_s", "ecc_decode_s", "decode_s")
INTEGER_COLUMNS = tuple(name for name in COLUMNS if _TYPES[name] is int)
NUMBER_COLUMNS = tuple(name for name in COLUMNS if _TYPES[name] is float)


def format_value(value: Any) -> str:
    """A value as the file writes it: ``true``/``false``, ``repr`` of floats, single-line
    text."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return repr(value)
    return str(value).replace("\r", " ").replace("\n", " ")


def columns_table() -> str:
    """The Markdown table of the columns and their meanings (shown in docs/results.md)."""
    lines = ["| column | type | meaning |", "| --- | --- | --- |"]
    for item in dataclasses.fields(ResultRow):
        kind = _TYPES[item.name].__name__
        lines.append(f"| `{item.name}` | {kind} | {item.metadata['doc']} |")
    return "\n".join(lines) + "\n"
