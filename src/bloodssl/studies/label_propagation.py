"""What notebook 03 runs: graph label propagation and spreading on every embedding, at a few
label fractions (its plan per profile; the sweep itself is ``methods.propagation.sweep``)."""

from __future__ import annotations

from dataclasses import dataclass

from bloodssl.methods.propagation import GRID, KERNELS
from bloodssl.studies.embeddings import PLANS as EMBEDDING_PLANS


@dataclass(frozen=True)
class Plan:
    """Notebook 03 at one profile: the label ``fractions``, the graph ``kernels`` and the
    kernel-parameter ``grid`` tried on the validation split, and the embeddings' settings,
    which are notebook 02's (``n_components``, ``simclr_epochs``, ``cnn``) so that both share
    the cached encoders."""

    fractions: tuple[float, ...]
    kernels: tuple[str, ...]
    grid: dict
    n_components: int
    simclr_epochs: int
    cnn: dict


def _plan(profile: str, fractions: tuple[float, ...], kernels: tuple[str, ...], grid: dict) -> Plan:
    embeddings = EMBEDDING_PLANS[profile]
    return Plan(fractions, kernels, grid, embeddings.n_components, embeddings.simclr_epochs, embeddings.cnn)


PLANS: dict[str, Plan] = {
    "smoke": _plan("smoke", (0.01, 0.05, 0.10), KERNELS,
                   {"rbf": {"gamma": [300.0]}, "knn": {"n_neighbors": [10]}, "alpha": {"alpha": [0.2]}}),
    # default: the kNN graph only, at one setting that validation often picked in the earlier runs (the dense RBF
    # graph of 11,959 images costs ~9 s a fit on 2 cores and was within a point of kNN on every learnt embedding;
    # the full grid is the full profile's); 1 % and 5 % labels, each with its own few-label CNN
    "default": _plan("default", (0.01, 0.05), ("knn",), {"knn": {"n_neighbors": [10]}, "alpha": {"alpha": [0.2]}}),
    "full": _plan("full", (0.01, 0.05, 0.10), KERNELS, GRID),
}  # fmt: skip
