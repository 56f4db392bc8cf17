"""``make bench``: training and inference images/s of every registered model on this CPU, per
backend (torch fp32, OpenVINO fp32 and int8) and batch size, with the FLOP/s achieved
against the CPU's practical fp32 peak (a large matrix product in torch on the same
threads), into ``reports/results/bench.csv`` (one row per measurement) and ``bench.json``
(the machine and library versions).

Speed is measured on random weights and the real training images (random ones without
``make data``): throughput does not depend on what the weights learnt. Each figure is the
median of ``repeats`` timed windows after a warm-up. Training FLOPs are three forward
passes per image (forward, and the two products of the backward pass).
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import tempfile
import time
from collections.abc import Callable, Sequence
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from bloodssl import data, paths
from bloodssl.core.complexity import flops_per_image, parameters
from bloodssl.core.io import atomic_path
from bloodssl.core.schedules import set_threads
from bloodssl.deploy.backends import OpenVINOBackend, TorchBackend, export_openvino
from bloodssl.models import MODELS, build_architecture

BACKENDS = ("torch-fp32", "openvino-fp32", "openvino-int8")


def timed(step: Callable[[], int], seconds: float, repeats: int = 3) -> float:
    """Median images/s of ``step()`` (which returns the images it handled) over ``repeats``
    windows of at least ``seconds`` / ``repeats`` each, after one warm-up call."""
    step()
    rates = []
    for _ in range(repeats):
        start, done = time.perf_counter(), 0
        while (elapsed := time.perf_counter() - start) < seconds / repeats or done == 0:
            done += step()
        rates.append(done / elapsed)
    return statistics.median(rates)


def fp32_peak(seconds: float = 3.0, size: int = 2048) -> float:
    """GFLOP/s of a ``size`` x ``size`` float32 matrix product in torch: the practical peak
    of this CPU on the current threads, against which the networks' FLOP/s are read."""
    a, b = torch.randn(size, size), torch.randn(size, size)
    return timed(lambda: (a @ b, size)[1], seconds) * 2 * size**2 / 1e9


def training_rate(model: torch.nn.Module, images: torch.Tensor, seconds: float) -> float:
    """Images/s of SGD steps (forward, backward, update) on ``images``, channels-last."""
    model = model.to(memory_format=torch.channels_last).train()
    optimiser = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    targets = torch.randint(0, model.head.out_features, (len(images),))
    batch = images.contiguous(memory_format=torch.channels_last)

    def step() -> int:
        loss = F.cross_entropy(model(batch), targets)
        optimiser.zero_grad(set_to_none=True)
        loss.backward()
        optimiser.step()
        return len(batch)

    return timed(step, seconds)


def bench_model(name: str, images: np.ndarray, batch_sizes: Sequence[int], backends: Sequence[str],
                seconds: float, folder: Path) -> list[dict]:  # fmt: skip
    """Every measurement of one model: its training rate, then inference per backend and batch size."""
    n_classes, channels = 8, images.shape[-1]
    model = build_architecture(name, n_classes, [0.5] * channels, [0.25] * channels).eval()
    flops = flops_per_image(model, (channels, *images.shape[1:3]))
    keys = {"model": name, "parameters": parameters(model), "mflops_per_image": flops / 1e6,
            "threads": torch.get_num_threads()}  # fmt: skip
    rows = []
    for batch_size in batch_sizes:
        rate = training_rate(model, data.to_tensor(images[:batch_size]), seconds)
        rows.append({**keys, "mode": "train", "backend": "torch-fp32", "batch_size": batch_size,
                     "images_per_second": rate, "gflops_per_second": 3 * rate * flops / 1e9})  # fmt: skip
    model.eval()
    for backend_name in backends:
        if backend_name == "torch-fp32":
            run = TorchBackend(model)
        else:
            calibration = images[:300] if backend_name.endswith("int8") else None
            xml = export_openvino(model, folder / f"{name}-{backend_name}.xml", calibration, images.shape[1:])
        for batch_size in batch_sizes:
            if backend_name == "torch-fp32":
                run.batch_size = batch_size
            else:
                run = OpenVINOBackend(xml, batch_size=batch_size)
            chunk = images[: 8 * batch_size]  # several requests, so both OpenVINO streams are busy
            rate = timed(lambda run=run, chunk=chunk: len(run(chunk)[0]), seconds)
            rows.append({**keys, "mode": "inference", "backend": backend_name, "batch_size": batch_size,
                         "images_per_second": rate, "gflops_per_second": rate * flops / 1e9})  # fmt: skip
    return rows


def bench(models: Sequence[str] = tuple(MODELS), batch_sizes: Sequence[int] = (64, 256),
          backends: Sequence[str] = BACKENDS, seconds: float = 3.0, threads: int | None = None,
          progress: bool = True) -> tuple[pd.DataFrame, dict]:  # fmt: skip
    """The measurements of every model (a table) and the machine they were made on."""
    unknown = sorted(set(models) - set(MODELS)) + sorted(set(backends) - set(BACKENDS))
    if unknown:
        raise ValueError(f"unknown model or backend {', '.join(unknown)}; models: {', '.join(MODELS)}; "
                         f"backends: {', '.join(BACKENDS)}")  # fmt: skip
    set_threads(threads)
    path = data.default_path()
    rng = np.random.default_rng(0)
    images = data.load_split("train").images[:2048] if path.is_file() else \
        rng.integers(0, 256, (2048, 28, 28, 3), dtype=np.uint8)  # fmt: skip
    peak = fp32_peak(seconds)
    rows = []
    with tempfile.TemporaryDirectory() as folder:
        for name in tqdm(models, desc="bench", unit="model", disable=not progress):
            rows += bench_model(name, images, batch_sizes, backends, seconds, Path(folder))
    table = pd.DataFrame(rows).assign(peak_fraction=lambda t: t["gflops_per_second"] / peak)
    machine = {"cpu": platform.processor() or platform.machine(), "threads": torch.get_num_threads(),
               "fp32_peak_gflops_per_second": peak, "images": "train" if path.is_file() else "random",
               "seconds_per_measurement": seconds, "date": time.strftime("%Y-%m-%d"),
               **{f"{lib}_version": installed(lib) for lib in ("torch", "openvino", "nncf")}}  # fmt: skip
    return table, machine


def installed(package: str) -> str | None:
    """The installed version of ``package`` (None without it: a torch-only bench needs no ``fast`` extra)."""
    try:
        return version(package)
    except PackageNotFoundError:
        return None


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bloodssl.deploy.bench", description=__doc__)
    parser.add_argument("--models", nargs="+", default=list(MODELS), choices=list(MODELS))
    parser.add_argument("--batch-sizes", nargs="+", type=int, default=[64, 256])
    parser.add_argument("--backends", nargs="+", default=list(BACKENDS), choices=BACKENDS)
    parser.add_argument("--seconds", type=float, default=3.0, help="timed seconds per measurement")
    parser.add_argument("--out", type=Path, default=paths.RESULTS, help="folder of bench.csv and bench.json")
    args = parser.parse_args(argv)
    table, machine = bench(args.models, args.batch_sizes, args.backends, args.seconds)
    with atomic_path(args.out / "bench.csv") as tmp:
        table.to_csv(tmp, index=False)
    with atomic_path(args.out / "bench.json") as tmp:
        tmp.write_text(json.dumps(machine, indent=2) + "\n")
    print(table.to_string(index=False, float_format=lambda v: f"{v:,.3g}"))


if __name__ == "__main__":
    main()
