"""Run sizes shared by every notebook: ``smoke``, ``default`` and ``full``.

``smoke`` checks that a notebook runs end to end in seconds on a small stratified
subset; ``default`` is the real data at a cost a 2-core laptop can afford; ``full`` is
the paper-grade run (more epochs and seeds).
"""

from __future__ import annotations

from dataclasses import dataclass

from bloodssl.data import Split
from bloodssl.data.splits import labelled_subset


@dataclass(frozen=True)
class Profile:
    """How big a run is. ``per_class=None`` keeps a whole split."""

    name: str
    train_per_class: int | None
    eval_per_class: int | None
    epochs: int
    n_seeds: int
    #: at least this many images per epoch of a CNN (``CNNClassifier.min_epoch_samples``): a
    #: few-label subset, or the smoke profile's few images, alone gives too few optimiser steps
    epoch_samples: int = 2048

    def seeds(self, first: int = 0) -> list[int]:
        """The seeds of this profile, starting at ``first``."""
        return list(range(first, first + self.n_seeds))

    def shrink(self, split: Split, seed: int = 0) -> Split:
        """``split`` cut to this profile's size (stratified, the same images for a seed)."""
        per_class = self.train_per_class if split.name == "train" else self.eval_per_class
        if per_class is None:
            return split
        return split.subset(labelled_subset(split.labels, per_class=per_class, seed=seed))


PROFILES: dict[str, Profile] = {
    # 3 epochs of 2,048 images: a smoke CNN on every label clearly above chance (54 % on BloodMNIST, seed 0); on 1-10 %
    # of the smoke split (smaller batches, so more steps) notebooks 02, 03 and 05 train on a third of that
    "smoke": Profile("smoke", train_per_class=40, eval_per_class=20, epochs=3, n_seeds=1),
    # default: the whole data, 2 seeds and 4 epochs (a full-data CNN trains at ~530-600 images/s on the 2-core
    # machine of 2026-11-30: about 80-90 s a seed); 3 seeds no longer fitted the hour once notebooks 07 and 08 were
    # added and the machine ran about 12 % slower than in the morning. What recomputing every notebook from scratch
    # costs is measured by `make fresh-reports` (reports/results/from_scratch.csv)
    "default": Profile("default", train_per_class=None, eval_per_class=None, epochs=4, n_seeds=2),
    "full": Profile("full", train_per_class=None, eval_per_class=None, epochs=80, n_seeds=5),
}


def get_profile(name: str) -> Profile:
    """The profile called ``name``; an unknown name lists the choices."""
    if name not in PROFILES:
        raise ValueError(f"unknown profile {name!r}; choose one of {', '.join(PROFILES)}")
    return PROFILES[name]
