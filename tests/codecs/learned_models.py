"""A tiny random hyperprior models folder for tests (``quality-1``), made once per process."""

from __future__ import annotations

from pathlib import Path

_FOLDER: list[Path] = []


def tiny_hyperprior() -> Path:
    """A folder with one small untrained rate point (N = 16, M = 24), in a temporary folder;
    usable at collection time (the decoder fuzz test needs it there)."""
    if not _FOLDER:
        import tempfile

        import torch

        from noisylink.codecs.learned.model import HyperpriorModel, HyperpriorShape
        from noisylink.codecs.learned.training import export_model

        folder = Path(tempfile.mkdtemp(prefix="noisylink-tiny-hyperprior-"))
        torch.manual_seed(0)
        export_model(HyperpriorModel(HyperpriorShape(N=16, M=24)), folder / "quality-1",
                     {"lambda": 0.01})
        _FOLDER.append(folder)
    return _FOLDER[0]
