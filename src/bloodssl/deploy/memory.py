"""Peak memory of a registered architecture on this machine, for inference and for training.

A process's peak resident set size only grows, so each architecture is measured in a fresh
process of its own (``spawn``). There, once torch is loaded and the network built, Linux's
high-water mark is reset (``/proc/self/clear_refs``) and read back (``VmHWM``) after a few
inference batches and again after a few SGD steps: what the network adds to a process that
already holds torch, weights included.
"""

from __future__ import annotations

import multiprocessing
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import torch
import torch.nn.functional as F

from bloodssl.models import build_architecture

STATUS, CLEAR_REFS = Path("/proc/self/status"), Path("/proc/self/clear_refs")


def peak_memory_mib(name: str, batch_size: int = 64, shape: tuple[int, int, int] = (28, 28, 3),
                    steps: int = 3) -> dict[str, float]:  # fmt: skip
    """``{"inference_peak_mib", "train_peak_mib"}``: the most resident memory (MiB) ``name``
    adds to a process holding torch, over ``steps`` inference batches and then ``steps`` SGD
    steps of ``batch_size`` images of ``shape`` (H, W, C); Linux only."""
    if not CLEAR_REFS.exists():
        raise OSError("peak memory is read from Linux's /proc/self (VmHWM); this system has none")
    with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as pool:
        return pool.submit(_measure, name, batch_size, shape, steps).result()


def _resident_mib(field: str) -> float:
    line = next(line for line in STATUS.read_text().splitlines() if line.startswith(f"{field}:"))
    return int(line.split()[1]) / 1024  # kB


def _measure(name: str, batch_size: int, shape: tuple[int, int, int], steps: int) -> dict[str, float]:
    height, width, channels = shape
    images = torch.rand(batch_size, channels, height, width)
    targets = torch.randint(0, 8, (batch_size,))
    base = _resident_mib("VmRSS")
    CLEAR_REFS.write_text("5")  # VmHWM := VmRSS
    model = build_architecture(name, 8, [0.5] * channels, [0.25] * channels).eval()
    with torch.inference_mode():
        for _ in range(steps):
            model(images)
    inference = _resident_mib("VmHWM") - base
    model.train()
    optimiser = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    for _ in range(steps):
        loss = F.cross_entropy(model(images), targets)
        optimiser.zero_grad(set_to_none=True)
        loss.backward()
        optimiser.step()
    return {"inference_peak_mib": inference, "train_peak_mib": _resident_mib("VmHWM") - base}
