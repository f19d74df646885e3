"""constriction's ANS decoder for any words, as the entropy-coded codecs need it.

A stream from the channel may be anything. constriction's ANS decoder accepts any words and
decodes them to symbols in range, with one refusal: a stream ending in a zero word (which an
encoder never writes). ``ans_decoder`` drops trailing zero words first, so every stream decodes.
"""

from __future__ import annotations

from typing import Any

import numpy as np


def ans_decoder(words: np.ndarray) -> Any:  # constriction.stream.stack.AnsCoder
    """An ANS decoder over ``words`` (uint32), trailing zero words dropped."""
    import constriction

    words = np.trim_zeros(np.ascontiguousarray(words, dtype=np.uint32), "b")
    return constriction.stream.stack.AnsCoder(np.ascontiguousarray(words))
