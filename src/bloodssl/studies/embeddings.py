"""What notebook 02 runs: a SimCLR encoder and a few-label CNN as embeddings, then
projections and clusterings of each (its plan per profile)."""

from __future__ import annotations

from dataclasses import dataclass

from bloodssl.profiles import PROFILES


@dataclass(frozen=True)
class Plan:
    """Notebook 02 at one profile.

    ``simclr_epochs``: SimCLR epochs; an epoch of the 11,959 training images takes about
    10 s on 2 free cores (two views per image, ~1,200 images/s). ``cnn``: the
    ``CNNClassifier`` parameters of the few-label CNN. ``n_components``: PCA components
    before clustering; ``map_points``: points in the 2-D maps (t-SNE is quadratic, so the
    test split is subsampled; None: all); ``ks``: the k of the KMeans sweep;
    ``min_samples``: DBSCAN's.
    """

    simclr_epochs: int
    cnn: dict
    n_components: int
    map_points: int | None
    ks: tuple[int, ...]
    min_samples: int


def cnn_params(profile: str) -> dict:
    """The few-label CNN's epochs and images per epoch at ``profile`` (from ``bloodssl.profiles``)."""
    return {"epochs": PROFILES[profile].epochs, "min_epoch_samples": PROFILES[profile].epoch_samples}


PLANS: dict[str, Plan] = {
    # smoke: the few-label CNN at 2 epochs of 1,024 images, a third of the smoke profile's (53-73 % at 1-10 % of the
    # smoke split, seeds 0 and 1), since notebook 03 trains one at each of its three fractions
    "smoke": Plan(1, {"epochs": 2, "min_epoch_samples": 1024}, 16, 160, tuple(range(2, 11)), 5),
    # default: 8 SimCLR epochs (about 4 min on the 2-core machine of 2026-11-29, where an epoch takes ~28 s)
    "default": Plan(8, cnn_params("default"), 32, 1000, tuple(range(2, 16)), 10),
    "full": Plan(150, cnn_params("full"), 32, None, tuple(range(2, 21)), 10),
}
