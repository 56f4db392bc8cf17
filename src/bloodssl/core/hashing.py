"""Fingerprints of arrays, weights and run settings: the keys under which checkpoints,
cached embeddings, cached predictions and the active-learning state are reused."""

from __future__ import annotations

import hashlib
import json

import numpy as np
import torch


def fingerprint(*arrays: np.ndarray | None) -> str:
    """md5 of the arrays' shapes, dtypes and bytes, in order (``None`` entries are skipped)."""
    digest = hashlib.md5()
    for array in arrays:
        if array is not None:
            array = np.ascontiguousarray(array)
            digest.update(f"{array.shape}{array.dtype}".encode())
            digest.update(array.tobytes())
    return digest.hexdigest()


def weights_fingerprint(module: torch.nn.Module) -> str:
    """md5 of a network's floating-point weights and buffers: equal fingerprint, equal outputs."""
    return fingerprint(*(t.detach().cpu().numpy() for t in module.state_dict().values() if t.is_floating_point()))


def signature(params: dict, data: str) -> str:
    """The key of a run: its parameters (JSON, sorted) and the fingerprint of its data."""
    return hashlib.md5(json.dumps([params, data], sort_keys=True, default=str).encode()).hexdigest()
