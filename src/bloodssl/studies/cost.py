"""The cost model of notebook 08 (scaling and cost): what labelling ``n_images`` costs on a
rented instance, and what the human review of the unsure ones adds.

Instance prices are parameters in ``data/instance_prices.csv`` (each row with its source page
and the date it was read), never numbers in this file. CPU throughput is the one measured here,
scaled linearly to more vCPUs; GPU throughput is an estimate from the accelerator's fp32 peak.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from bloodssl import paths

PRICES = paths.ROOT / "data" / "instance_prices.csv"
COLUMNS = ("instance", "provider", "kind", "vcpus", "gpu", "eur_per_hour", "fp32_tflops", "source", "date", "note")
#: share of the fp32 peak a small CNN's inference is assumed to reach: a guess, vary it
UTILISATION = 0.3


def _positive(name: str, value: float) -> float:
    if not value > 0:
        raise ValueError(f"{name} must be positive, got {value}")
    return float(value)


def load_prices(path: str | Path | None = None) -> pd.DataFrame:
    """The instance table (``data/instance_prices.csv`` by default), one row per instance;
    GPU rows need their ``fp32_tflops``, every row a positive price, a source and a date."""
    path = Path(path or PRICES)
    prices = pd.read_csv(path)
    missing = [c for c in COLUMNS if c not in prices.columns]
    if missing:
        raise ValueError(f"{path} lacks the columns {', '.join(missing)}; it needs {', '.join(COLUMNS)}")
    if not prices["kind"].isin(["cpu", "gpu"]).all():
        raise ValueError(f"{path}: kind must be 'cpu' or 'gpu', found {sorted(set(prices['kind']) - {'cpu', 'gpu'})}")
    for column in ("eur_per_hour", "vcpus"):
        bad = prices.loc[~(prices[column] > 0), "instance"].tolist()
        if bad:
            raise ValueError(f"{path}: {column} must be positive; fix the rows of {', '.join(map(str, bad))}")
    bad = prices.loc[(prices["kind"] == "gpu") & ~(prices["fp32_tflops"] > 0), "instance"].tolist()
    if bad:
        raise ValueError(f"{path}: GPU rows need a positive fp32_tflops (the datasheet's fp32 peak); fix {bad}")
    bad = prices.loc[prices[["source", "date"]].isna().any(axis=1), "instance"].tolist()
    if bad:
        raise ValueError(f"{path}: every price needs its source page and the date it was read; fix {bad}")
    try:
        pd.to_datetime(prices["date"], format="ISO8601")
    except ValueError as error:
        raise ValueError(f"{path}: date must be ISO (2025-01-31), the day the price was read: {error}") from None
    return prices


def cost_per_million(images_per_second: float, eur_per_hour: float) -> float:
    """EUR to label 1,000,000 images at ``images_per_second`` on an instance of ``eur_per_hour``."""
    hours = 1e6 / _positive("images_per_second", images_per_second) / 3600
    return hours * _positive("eur_per_hour", eur_per_hour)


def scale_cpu_throughput(images_per_second_measured: float, measured_cores: float, vcpus: float) -> float:
    """Throughput on ``vcpus`` from the one measured on ``measured_cores`` (this machine: 2 vCPUs),
    scaled linearly. Assumes one cloud vCPU does the work of one vCPU here (no 2 vCPUs = 1 core
    correction) and perfect scaling: an upper bound, as memory bandwidth and threading overheads
    do not scale."""
    per_core = _positive("images_per_second_measured", images_per_second_measured) / _positive(
        "measured_cores", measured_cores
    )
    return per_core * _positive("vcpus", vcpus)


def gpu_throughput(flops_per_image: float, fp32_tflops: float, utilisation: float = UTILISATION) -> float:
    """An ESTIMATE, not a measurement: images/s = ``utilisation`` x the fp32 peak / ``flops_per_image``
    (the forward pass, a multiply-add counted as 2 FLOPs). ``utilisation``, the share of the peak
    reached, is a guess (0.3 by default); report results for several values."""
    if not 0 < utilisation <= 1:
        raise ValueError(f"utilisation is a share of the peak in (0, 1], got {utilisation}")
    return utilisation * _positive("fp32_tflops", fp32_tflops) * 1e12 / _positive("flops_per_image", flops_per_image)


def plan_table(
    prices: pd.DataFrame,
    cpu_images_per_second: float,
    measured_cores: float,
    flops_per_image: float,
    n_images: int,
    utilisation: float = UTILISATION,
) -> pd.DataFrame:
    """One row per instance of ``prices``: images/s (``throughput_basis`` "measured" for CPUs,
    scaled from ``cpu_images_per_second`` on ``measured_cores``; "estimated" for GPUs, from
    ``gpu_throughput``), the hours and EUR to label ``n_images``, and EUR per million."""
    _positive("n_images", n_images)
    rows = []
    for item in prices.itertuples(index=False):
        if item.kind == "cpu":
            speed, basis = scale_cpu_throughput(cpu_images_per_second, measured_cores, item.vcpus), "measured"
        else:
            speed, basis = gpu_throughput(flops_per_image, item.fp32_tflops, utilisation), "estimated"
        hours = n_images / speed / 3600
        rows.append({"instance": item.instance, "provider": item.provider, "kind": item.kind,
                     "eur_per_hour": item.eur_per_hour, "images_per_second": speed, "throughput_basis": basis,
                     "hours": hours, "eur": hours * item.eur_per_hour,
                     "eur_per_million": cost_per_million(speed, item.eur_per_hour)})  # fmt: skip
    return pd.DataFrame(rows)


def review_share(confidences: np.ndarray, correct: np.ndarray, thresholds: np.ndarray) -> pd.DataFrame:
    """Per threshold t: the share of images sent to human review (confidence < t), the number and
    accuracy of the auto-accepted rest, and their errors per million (NaN when none is accepted).
    ``confidences`` are calibrated top-class probabilities of a labelled split, ``correct`` whether
    each prediction was right."""
    confidences, correct = np.asarray(confidences, dtype=float), np.asarray(correct)
    thresholds = np.asarray(thresholds, dtype=float)
    if confidences.ndim != 1 or confidences.shape != correct.shape or not len(confidences):
        raise ValueError(f"confidences and correct must be 1-D of one length per image; got {confidences.shape} "
                         f"and {correct.shape}")  # fmt: skip
    if correct.dtype != bool:
        raise ValueError(f"correct must be a boolean mask (prediction == label), got dtype {correct.dtype}")
    for name, values in (("confidences", confidences), ("thresholds", thresholds)):
        if not ((values >= 0) & (values <= 1)).all():
            raise ValueError(f"{name} must lie in [0, 1] (probabilities), found {values.min()} to {values.max()}")
    rows = []
    for t in thresholds.ravel():
        accepted = confidences >= t
        accuracy = correct[accepted].mean() if accepted.any() else float("nan")
        rows.append({"threshold": t, "review_share": 1 - accepted.mean(), "n_accepted": int(accepted.sum()),
                     "accepted_accuracy": accuracy, "errors_per_million": (1 - accuracy) * 1e6})  # fmt: skip
    return pd.DataFrame(rows)


def review_cost(share: float, n_images: int, eur_per_review: float) -> float:
    """EUR for people to review ``share`` of ``n_images`` at ``eur_per_review`` each."""
    if not 0 <= share <= 1:
        raise ValueError(f"share is the fraction of images reviewed, in [0, 1]; got {share}")
    if n_images < 0 or eur_per_review < 0:
        raise ValueError(f"n_images and eur_per_review must not be negative; got {n_images} and {eur_per_review}")
    return float(share * n_images * eur_per_review)
