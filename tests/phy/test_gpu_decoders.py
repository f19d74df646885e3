"""The torch decoders on a GPU equal the numba ones (``gpu`` marker: these skip without CUDA).

On the CPU the torch backends are compared with numba bit for bit elsewhere; here the same
codes decode on the GPU, where reductions may run in another order, so the words and ``ok``
flags are compared exactly (iteration counts are not), on channels noisy enough that the
decoders work for it but not so noisy that a last-bit difference could change a decision.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from noisylink.phy.ecc import ECCS
from noisylink.phy.ecc.backends import resolve_backend, torch_device

pytestmark = pytest.mark.gpu


def noisy_llr(ecc: Any, blocks: int, ebn0_db: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Information bits and the BPSK-over-AWGN LLRs of their codewords."""
    rng = np.random.default_rng(seed)
    info = rng.integers(0, 2, blocks * ecc.k, dtype=np.uint8)
    coded = ecc.encode(info)
    sigma2 = 1.0 / (2 * ecc.rate * 10 ** (ebn0_db / 10))
    received = (1.0 - 2.0 * coded) + rng.normal(0.0, np.sqrt(sigma2), coded.size)
    return info, 2.0 * received / sigma2


def test_auto_picks_the_gpu() -> None:
    assert resolve_backend("auto") == "torch" and torch_device().type == "cuda"


CASES = [  # (settings, Eb/N0 in dB where every block decodes)
    ({"name": "ldpc", "n": 648, "rate": "1/2", "method": "sum-product"}, 3.0),
    ({"name": "ldpc", "n": 1944, "rate": "5/6", "method": "min-sum", "schedule": "layered"}, 4.5),
    ({"name": "conv", "block_bits": 256}, 3.0),
    ({"name": "rs", "k": 223}, 6.5),
]


@pytest.mark.parametrize(("settings", "ebn0_db"), CASES,
                         ids=["ldpc-sp", "ldpc-ms-layered", "conv", "rs"])
def test_torch_on_the_gpu_decodes_like_numba(settings: dict[str, Any], ebn0_db: float) -> None:
    on_gpu = ECCS.build(ECCS.config({**settings, "backend": "torch"}))
    on_cpu = ECCS.build(ECCS.config({**settings, "backend": "numba"}))
    info, llr = noisy_llr(on_cpu, 24, ebn0_db, seed=7)
    words, ok = on_gpu.decode(llr)
    expected_words, expected_ok = on_cpu.decode(llr)
    np.testing.assert_array_equal(ok, expected_ok)
    np.testing.assert_array_equal(words, expected_words)
    assert np.array_equal(expected_words, info)  # the channel was one the codes correct
