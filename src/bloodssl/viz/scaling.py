"""Figures of notebook 08: throughput per backend, the human-review trade-off and cost
against accuracy."""

from __future__ import annotations

import matplotlib.pyplot as plt
import pandas as pd
from matplotlib.figure import Figure


def throughput(table: pd.DataFrame, target: float | None = None) -> Figure:
    """Images/s of each labelling run (``table``: columns ``run`` and ``images_per_second``),
    with the issue's ``target`` as a dashed line."""
    fig, ax = plt.subplots(figsize=(8, 0.5 + 0.45 * len(table)))
    ax.barh(table["run"], table["images_per_second"], color="tab:blue")
    for y, value in enumerate(table["images_per_second"]):
        ax.text(value, y, f" {value:,.0f}", va="center")
    if target is not None:
        ax.axvline(target, color="tab:red", linestyle="--", label=f"target {target:,.0f} images/s")
        ax.legend(loc="lower right")
    ax.invert_yaxis()
    ax.set_xlabel("images / s on this machine's 2 CPU cores")
    return fig


def review_tradeoff(review: pd.DataFrame, chosen: float | None = None) -> Figure:
    """Share of images sent to people (left axis) and accuracy of the auto-accepted rest (right
    axis) against the confidence threshold (``studies.cost.review_share``'s table)."""
    fig, ax = plt.subplots(figsize=(8, 4))
    ax.plot(review["threshold"], 100 * review["review_share"], color="tab:orange", label="sent to review")
    ax.set_xlabel("confidence threshold (calibrated probability)")
    ax.set_ylabel("images sent to review (%)", color="tab:orange")
    right = ax.twinx()
    right.plot(review["threshold"], 100 * review["accepted_accuracy"], color="tab:green", label="accepted accuracy")
    right.set_ylabel("accuracy of accepted labels (%)", color="tab:green")
    if chosen is not None:
        ax.axvline(chosen, color="grey", linestyle=":")
    return fig


def cost_vs_accuracy(points: pd.DataFrame) -> Figure:
    """EUR per million images (log) against test accuracy, one point per ``label``."""
    fig, ax = plt.subplots(figsize=(7, 4.5))
    ax.scatter(points["accuracy"] * 100, points["eur_per_million"], s=50)
    for row in points.itertuples(index=False):
        ax.annotate(row.label, (row.accuracy * 100, row.eur_per_million), textcoords="offset points", xytext=(5, 4),
                    fontsize=8)  # fmt: skip
    ax.set_yscale("log")
    ax.set_xlabel("test accuracy (%)")
    ax.set_ylabel("EUR per million images")
    return fig
