"""Eight blocks at once: explicit float64 vector operations for the numba Viterbi kernel.

A *lane vector* is ``LANES`` consecutive float64 values of a 1-D C-contiguous array, one per
block of a lock-step group (``numba.py``). Each function here is a numba ``intrinsic`` that
emits LLVM vector instructions on ``<LANES x double>`` directly: on AVX-512 one register,
elsewhere LLVM splits it (AVX2: two, SSE2: four). Plain numba loops over the lanes vectorise
only behind runtime alias checks, or not at all; here the add-compare-select of eight blocks is
four adds, two compares and two selects (``vmaxpd``), and each compare's eight decision bits
go to memory as one byte (``kmovb``). The float64 operations are exactly those of the scalar
code they replace (no fused multiply-add, no reassociation), so results are bit-identical.

Indices are element offsets (not lane-vector offsets) and are **not bounds-checked**: the
caller guarantees that ``[i, i + LANES)`` lies inside each array. Call these only from
``@numba.njit`` code. numba's on-disk cache of a calling kernel keys on the caller's source
file only: after editing this file, delete the callers' cached ``*.nbi``/``*.nbc`` files.
"""

from __future__ import annotations

from typing import Any

from llvmlite import ir
from numba import types
from numba.core import cgutils
from numba.extending import intrinsic

from noisylink.phy.ecc.base import LLR_LIMIT

LANES = 8  # float64 lanes in one vector: 512 bits, one AVX-512 register

_DOUBLE = ir.DoubleType()
_INDEX = ir.IntType(64)
_VECTOR = ir.VectorType(_DOUBLE, LANES)
_MASK_BYTE = ir.IntType(LANES)  # a lane mask as a number: bit `lane` set where its test holds


def _float_vector(array: types.Type) -> bool:
    return isinstance(array, types.Array) and array.ndim == 1 and array.dtype == types.float64


def _byte_vector(array: types.Type) -> bool:
    return isinstance(array, types.Array) and array.ndim == 1 and array.dtype == types.uint8


def _element(context: Any, builder: ir.IRBuilder, array_type: types.Array, array: Any,
             index: Any, element: ir.Type) -> Any:
    """Pointer to ``array[index]`` (no bounds check)."""
    data = context.make_array(array_type)(context, builder, array).data
    return builder.gep(data, [index], inbounds=True, source_etype=element)


def _lanes(context: Any, builder: ir.IRBuilder, array_type: types.Array, array: Any,
           index: Any) -> Any:
    """Pointer to the lane vector ``array[index : index + LANES]``."""
    pointer = _element(context, builder, array_type, array, index, _DOUBLE)
    return builder.bitcast(pointer, _VECTOR.as_pointer())


def _broadcast(builder: ir.IRBuilder, value: Any) -> Any:
    first = builder.insert_element(ir.Constant(_VECTOR, None), value, ir.Constant(_INDEX, 0))
    zeros = ir.Constant(ir.VectorType(ir.IntType(32), LANES), [0] * LANES)
    return builder.shuffle_vector(first, first, zeros)


@intrinsic
def load_llr_lanes(typingctx: Any, dst: Any, at: Any, llr: Any, rows: Any, column: Any):
    """``dst[at + lane] = clean_value(llr[rows[lane] + column])`` for every lane: one LLR of
    each block of a group (``rows``: ``LANES`` int64 row offsets into the flat ``llr``), cleaned
    by ``clean_value``'s rule (NaN -> 0, beyond +-``LLR_LIMIT`` -> +-``LLR_LIMIT``)."""
    if not (_float_vector(dst) and _float_vector(llr) and isinstance(rows, types.Array)
            and rows.ndim == 1 and rows.dtype == types.int64):
        return None
    sig = types.void(dst, types.intp, llr, rows, types.intp)

    def codegen(context: Any, builder: ir.IRBuilder, signature: Any, args: list[Any]) -> Any:
        dst_type, _, llr_type, rows_type, _ = signature.args
        dst_value, at_value, llr_value, rows_value, column_value = args
        values = ir.Constant(_VECTOR, None)
        for lane in range(LANES):
            row = builder.load(
                _element(context, builder, rows_type, rows_value, ir.Constant(_INDEX, lane), _INDEX)
            )
            where = builder.add(row, column_value)
            value = builder.load(_element(context, builder, llr_type, llr_value, where, _DOUBLE))
            values = builder.insert_element(values, value, ir.Constant(_INDEX, lane))
        low = ir.Constant(_VECTOR, [-LLR_LIMIT] * LANES)
        high = ir.Constant(_VECTOR, [LLR_LIMIT] * LANES)
        clipped = builder.select(builder.fcmp_ordered("<", values, low), low, values)
        clipped = builder.select(builder.fcmp_ordered(">", clipped, high), high, clipped)
        is_nan = builder.fcmp_unordered("uno", values, values)
        cleaned = builder.select(is_nan, ir.Constant(_VECTOR, [0.0] * LANES), clipped)
        builder.store(cleaned, _lanes(context, builder, dst_type, dst_value, at_value), align=8)
        return context.get_dummy_value()

    return sig, codegen


@intrinsic
def pattern_gains_lanes(typingctx: Any, gain: Any, symbol: Any, signs: Any):
    """Every output pattern's gain on every lane: ``gain[p * LANES + lane] =
    signs[p, 0] * symbol[lane] + signs[p, 1] * symbol[LANES + lane] + ...``, summed left to
    right (``signs``: ``[patterns, n]`` C-contiguous, ``symbol``: ``n`` lane vectors)."""
    if not (_float_vector(gain) and _float_vector(symbol) and isinstance(signs, types.Array)
            and signs.ndim == 2 and signs.dtype == types.float64 and signs.layout == "C"):
        return None
    sig = types.void(gain, symbol, signs)

    def codegen(context: Any, builder: ir.IRBuilder, signature: Any, args: list[Any]) -> Any:
        gain_type, symbol_type, signs_type = signature.args
        gain_value, symbol_value, signs_value = args
        signs_array = context.make_array(signs_type)(context, builder, signs_value)
        n_patterns, n_outputs = cgutils.unpack_tuple(builder, signs_array.shape, 2)
        lanes = ir.Constant(_INDEX, LANES)
        total = cgutils.alloca_once(builder, _VECTOR)

        def term(p: Any, j: Any) -> Any:
            at = builder.add(builder.mul(p, n_outputs), j)
            sign = builder.load(builder.gep(signs_array.data, [at], source_etype=_DOUBLE))
            source = _lanes(context, builder, symbol_type, symbol_value, builder.mul(j, lanes))
            return builder.fmul(_broadcast(builder, sign), builder.load(source, align=8))

        with cgutils.for_range(builder, n_patterns) as pattern:
            p = pattern.index
            builder.store(term(p, ir.Constant(_INDEX, 0)), total)
            with cgutils.for_range(builder, n_outputs, start=ir.Constant(_INDEX, 1)) as output:
                builder.store(builder.fadd(builder.load(total), term(p, output.index)), total)
            target = _lanes(context, builder, gain_type, gain_value, builder.mul(p, lanes))
            builder.store(builder.load(total), target, align=8)
        return context.get_dummy_value()

    return sig, codegen


def _select_better(context: Any, builder: ir.IRBuilder, args: tuple[Any, ...], keep: Any,
                   other: Any, fresh_at: Any, decision_at: Any) -> None:
    """``fresh = other if other > keep else keep`` per lane; the comparison's lane mask (bit
    ``lane`` set where ``other`` won) is stored as the byte ``decisions[decision_at]``."""
    fresh_type, fresh_value, decisions_type, decisions_value = args
    take = builder.fcmp_ordered(">", other, keep)
    fresh = builder.select(take, other, keep)
    builder.store(fresh, _lanes(context, builder, fresh_type, fresh_value, fresh_at), align=8)
    byte = _element(context, builder, decisions_type, decisions_value, decision_at, ir.IntType(8))
    builder.store(builder.bitcast(take, _MASK_BYTE), byte, align=1)


@intrinsic
def acs_lanes(typingctx: Any, metric: Any, fresh: Any, gain: Any, decisions: Any, keep_at: Any,
              other_at: Any, keep_gain: Any, other_gain: Any, fresh_at: Any, decision_at: Any):
    """One state's add-compare-select on every lane: ``keep = metric[keep_at + lane] +
    gain[keep_gain + lane]``, ``other`` likewise, ``fresh[fresh_at + lane]`` = the larger
    (``keep`` on a tie), and the byte ``decisions[decision_at]`` gets bit ``lane`` set where
    ``other`` won."""
    if not (_float_vector(metric) and _float_vector(fresh) and _float_vector(gain)
            and _byte_vector(decisions)):
        return None
    sig = types.void(metric, fresh, gain, decisions, *([types.intp] * 6))

    def codegen(context: Any, builder: ir.IRBuilder, signature: Any, args: list[Any]) -> Any:
        metric_type, fresh_type, gain_type, decisions_type = signature.args[:4]
        metric_value, fresh_value, gain_value, decisions_value = args[:4]
        keep_at_v, other_at_v, keep_gain_v, other_gain_v, fresh_at_v, decision_at_v = args[4:]

        def load(array_type: types.Array, array: Any, index: Any) -> Any:
            return builder.load(_lanes(context, builder, array_type, array, index), align=8)

        keep = builder.fadd(
            load(metric_type, metric_value, keep_at_v), load(gain_type, gain_value, keep_gain_v)
        )
        other = builder.fadd(
            load(metric_type, metric_value, other_at_v), load(gain_type, gain_value, other_gain_v)
        )
        outputs = (fresh_type, fresh_value, decisions_type, decisions_value)
        _select_better(context, builder, outputs, keep, other, fresh_at_v, decision_at_v)
        return context.get_dummy_value()

    return sig, codegen


@intrinsic
def butterfly_lanes(typingctx: Any, metric: Any, fresh: Any, gain: Any, decisions: Any,
                    pair_at: Any, gain_at: Any, low_at: Any, high_at: Any, low_decision: Any,
                    high_decision: Any):
    """``acs_lanes`` for the two states (low, high) entered from one pair of states whose four
    branches carry the gains ``g`` (even into low, odd into high) and ``-g`` (the other two),
    ``g = gain[gain_at + lane]``: ``low = max(even + g, odd - g)``, ``high = max(even - g,
    odd + g)``, ``even`` kept on a tie. ``even``/``odd`` are the adjacent lane vectors at
    ``pair_at`` and ``pair_at + LANES``, loaded once; ``low_at``/``high_at`` are the offsets
    in ``fresh``, ``low_decision``/``high_decision`` the decision bytes. ``odd - g`` is
    ``odd + (-g)`` bit for bit: this is ``acs_lanes`` twice, with ``-g`` read as the other
    branches' gain."""
    if not (_float_vector(metric) and _float_vector(fresh) and _float_vector(gain)
            and _byte_vector(decisions)):
        return None
    sig = types.void(metric, fresh, gain, decisions, *([types.intp] * 6))

    def codegen(context: Any, builder: ir.IRBuilder, signature: Any, args: list[Any]) -> Any:
        metric_type, _, gain_type, _ = signature.args[:4]
        metric_value, _, gain_value, _ = args[:4]
        pair_at_v, gain_at_v, low_at_v, high_at_v, low_decision_v, high_decision_v = args[4:]
        outputs = (signature.args[1], args[1], signature.args[3], args[3])

        def load(array_type: types.Array, array: Any, index: Any) -> Any:
            return builder.load(_lanes(context, builder, array_type, array, index), align=8)

        even = load(metric_type, metric_value, pair_at_v)
        odd = load(metric_type, metric_value, builder.add(pair_at_v, ir.Constant(_INDEX, LANES)))
        g = load(gain_type, gain_value, gain_at_v)
        low = (builder.fadd(even, g), builder.fsub(odd, g))
        high = (builder.fsub(even, g), builder.fadd(odd, g))
        _select_better(context, builder, outputs, *low, low_at_v, low_decision_v)
        _select_better(context, builder, outputs, *high, high_at_v, high_decision_v)
        return context.get_dummy_value()

    return sig, codegen
