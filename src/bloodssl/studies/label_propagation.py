"""What notebook 03 runs: graph label propagation and spreading on every embedding, at a few
label fractions (its plan per profile; the sweep itself is ``methods.propagation.sweep``)."""

from __future__ import annotations

from dataclasses import dataclass

from bloodssl.methods.propagation import GRID
from bloodssl.studies.embeddings import PLANS as EMBEDDING_PLANS


@dataclass(frozen=True)
class Plan:
    """Notebook 03 at one profile: the label ``fractions``, the kernel-parameter ``grid``
    tried on the validation split, and the embeddings' settings, which are notebook 02's
    (``n_components``, ``simclr_epochs``, ``cnn``) so that both share the cached encoders."""

    fractions: tuple[float, ...]
    grid: dict
    n_components: int
    simclr_epochs: int
    cnn: dict


def _plan(profile: str, grid: dict) -> Plan:
    embeddings = EMBEDDING_PLANS[profile]
    return Plan((0.01, 0.05, 0.10), grid, embeddings.n_components, embeddings.simclr_epochs, embeddings.cnn)


PLANS: dict[str, Plan] = {
    "smoke": _plan("smoke", {"rbf": {"gamma": [300.0]}, "knn": {"n_neighbors": [10]}, "alpha": {"alpha": [0.2]}}),
    # default: the two values of each parameter that validation picks most often, which halves the cost
    "default": _plan(
        "default", {"rbf": {"gamma": [300.0, 1000.0]}, "knn": {"n_neighbors": [10, 20]}, "alpha": {"alpha": [0.2, 0.8]}}
    ),  # fmt: skip
    "full": _plan("full", GRID),
}
