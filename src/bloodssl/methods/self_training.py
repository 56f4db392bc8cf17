"""Confidence-threshold pseudo-labelling and self-training of the CNN.

``select_confident`` picks the unlabelled rows confident enough to pseudo-label.
``SelfTrainingCNN`` wraps a ``CNNClassifier`` in scikit-learn's semi-supervised shape
(``fit(X, y)`` with -1 for unlabelled, like ``sklearn.semi_supervised.SelfTrainingClassifier``):
train on the labels, pseudo-label the unlabelled images the model is sure of, fine-tune on
the enriched set, repeat; optionally retrain a fresh network on the final enriched labels.
Confidences are the 8-view TTA probabilities, temperature-scaled on the validation split
(label smoothing caps raw confidences near 0.91, so a raw 0.97 threshold would pick nothing).
``sweep`` runs methods over label fractions and seeds for notebook 04.
"""

from __future__ import annotations

import copy
import math
import time
from pathlib import Path

import numpy as np
import torch
from sklearn.base import BaseEstimator, ClassifierMixin, clone
from tqdm.auto import tqdm

from bloodssl.core.calibration import fit_temperature, sharpen
from bloodssl.core.prediction import cached_proba
from bloodssl.core.validation import check_threshold
from bloodssl.data.augment import StrongAugment
from bloodssl.methods.pseudo_labels import SELECTIONS, per_class_thresholds, select_confident
from bloodssl.methods.registry import register
from bloodssl.methods.staged import StagedNetworks
from bloodssl.methods.supervised import CNNClassifier


@register("self_training")
class SelfTrainingCNN(StagedNetworks, ClassifierMixin, BaseEstimator):
    """Self-training of a ``CNNClassifier`` in scikit-learn's semi-supervised shape.

    ``fit(X, y)`` trains ``estimator`` on the images whose label is not -1 (round 0). Each
    of ``rounds`` rounds then pseudo-labels unlabelled images with the current network (the
    teacher) and trains the next one (the student) for ``round_epochs`` epochs on the labels
    plus the pseudo-labels: a fresh network with the estimator's own learning rate
    (``warm_start=False``, the noisy-student recipe) or the teacher fine-tuned at peak
    learning rate ``round_lr`` (``warm_start=True``, cheaper). Pseudo-labels are re-chosen
    from every unlabelled image each round, so a wrong one can be corrected.

    The student sees ``strong_views`` strongly augmented copies (``StrongAugment``) of each
    pseudo-labelled image, while the teacher labelled the clean image with 8-view TTA; 0
    trains on the images as they are. The labelled images are repeated to make up at least
    ``labelled_share`` of the student's training set, so the true labels are not drowned.
    ``final_epochs > 0`` adds a last student trained from scratch for that many epochs.

    ``selection`` decides which predictions become labels:

    - ``"threshold"``: confidence at least ``threshold``;
    - ``"per_class"``: one threshold per class, the lowest at which that class's validation
      predictions are ``precision`` correct (tuned on ``eval_set`` only);
    - ``"top_k"``: class-balanced, the ``top_k * r`` most confident predictions of each
      class in selection ``r`` (growing round by round), none below ``threshold``.

    Confidences are the TTA probabilities re-tempered by ``temperature``: ``"auto"`` fits it
    on ``eval_set`` (temperature scaling), a number fixes it (1 = raw).

    After ``fit``: ``estimators_`` (the network of each round; the last predicts),
    ``rounds_`` (one dict per round: pseudo-labels chosen and newly added, their accuracy
    when ``y_true`` was given, class counts of the enriched labels, validation accuracy,
    seconds, images/s), ``transduction_`` (the final enriched labels of ``X``, -1 where
    none) and ``n_iter_``.
    """

    def __init__(
        self,
        estimator: CNNClassifier | None = None,
        selection: str = "top_k",
        threshold: float = 0.5,
        precision: float = 0.97,
        top_k: int = 500,
        rounds: int = 2,
        round_epochs: int = 6,
        warm_start: bool = False,
        round_lr: float = 0.05,
        strong_views: int = 2,
        labelled_share: float = 0.1,
        final_epochs: int = 0,
        temperature: float | str = "auto",
        checkpoint_dir: str | Path | None = None,
        progress: bool = True,
    ):
        self.estimator = estimator
        self.selection = selection
        self.threshold = threshold
        self.precision = precision
        self.top_k = top_k
        self.rounds = rounds
        self.round_epochs = round_epochs
        self.warm_start = warm_start
        self.round_lr = round_lr
        self.strong_views = strong_views
        self.labelled_share = labelled_share
        self.final_epochs = final_epochs
        self.temperature = temperature
        self.checkpoint_dir = checkpoint_dir
        self.progress = progress

    def _validate_params(self) -> None:
        if self.selection not in SELECTIONS:
            raise ValueError(f"unknown selection {self.selection!r}; choose one of {', '.join(SELECTIONS)}")
        check_threshold(self.threshold)
        check_threshold(self.precision, "precision")
        for name in ("top_k", "round_epochs"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1, got {getattr(self, name)}")
        for name in ("rounds", "final_epochs", "strong_views"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be 0 or more, got {getattr(self, name)}; 0 skips it")
        if not 0 <= self.labelled_share < 1:
            raise ValueError(f"labelled_share must be in [0, 1), got {self.labelled_share}; e.g. 0.1")
        if not (self.temperature == "auto" or (isinstance(self.temperature, int | float) and self.temperature > 0)):
            raise ValueError(
                f"temperature must be 'auto' (fitted on eval_set) or a positive number, got {self.temperature!r}"
            )
        self._check_estimator()

    def _confidences(self, proba: np.ndarray, val_proba: np.ndarray | None, y_val) -> tuple:
        """Re-tempered unlabelled and validation probabilities, and the temperature used."""
        if self.temperature != "auto":
            temperature = float(self.temperature)
        else:
            temperature = 1.0 if val_proba is None else fit_temperature(val_proba, y_val)
        val = None if val_proba is None else sharpen(val_proba, temperature)
        return sharpen(proba, temperature), val, temperature

    def _select(self, proba: np.ndarray, step: int, val_proba: np.ndarray | None, y_val) -> tuple:
        """Chosen rows, their pseudo-labels and the per-class thresholds applied."""
        if self.selection == "per_class":
            thresholds = per_class_thresholds(val_proba, y_val, self.precision)
            return (*select_confident(proba, thresholds), thresholds)
        top_k = self.top_k * step if self.selection == "top_k" else None
        thresholds = np.full(proba.shape[1], float(self.threshold))
        return (*select_confident(proba, self.threshold, top_k_per_class=top_k), thresholds)

    def _student_data(self, X: np.ndarray, y: np.ndarray, rows: np.ndarray, labels: np.ndarray, seed: int):
        """The student's training images and labels: repeated labelled images, then the
        pseudo-labelled ``rows`` of ``X`` (as ``strong_views`` strong views each)."""
        generator = torch.Generator().manual_seed(seed)
        views = [StrongAugment()(X[rows], generator) for _ in range(self.strong_views)] or [X[rows]]
        labelled = np.flatnonzero(y >= 0)
        pseudo = len(rows) * len(views)
        repeats = max(1, math.ceil(self.labelled_share * pseudo / ((1 - self.labelled_share) * len(labelled))))
        images = np.concatenate([np.repeat(X[labelled], repeats, axis=0), *views])
        targets = np.concatenate([np.repeat(y[labelled], repeats), np.tile(labels, len(views))])
        return images, targets

    def _student(self, step: int, base: CNNClassifier) -> tuple[CNNClassifier, str]:
        """The (unfitted) network of selection ``step`` and its stage name."""
        if step > self.rounds:
            return clone(base).set_params(epochs=self.final_epochs, checkpoint=self._checkpoint("final")), "final"
        checkpoint = self._checkpoint(f"round{step}")
        if not self.warm_start:
            return clone(base).set_params(epochs=self.round_epochs, checkpoint=checkpoint), "round"
        model = copy.deepcopy(self.estimators_[-1])
        model.set_params(warm_start=True, epochs=self.round_epochs, lr=self.round_lr, checkpoint=checkpoint)
        return model, "round"

    def fit(self, X, y, eval_set: tuple | None = None, y_true=None) -> SelfTrainingCNN:
        """Self-train on ``X`` with labels ``y`` (-1 for unlabelled).

        ``eval_set=(X_val, y_val)`` selects each network's best epoch, fits the temperature
        and tunes the per-class thresholds. ``y_true`` (the hidden labels of ``X``, if known)
        is used only to log how accurate the pseudo-labels are; it never reaches training.
        """
        self._validate_params()
        if self.selection == "per_class" and eval_set is None:
            raise ValueError(
                "selection='per_class' tunes its thresholds on labelled held-out images; "
                "pass eval_set=(X_val, y_val) (the validation split), or use selection='threshold'"
            )
        start = time.perf_counter()
        base, X, y, y_true, val_proba = self._fit_supervised(X, y, eval_set, y_true)
        y_val = None if eval_set is None else np.asarray(eval_set[1])
        unlabelled = np.flatnonzero(y < 0)
        enriched, chosen_before = y.copy(), np.zeros(0, int)
        steps = self.rounds + (self.final_epochs > 0)
        for step in tqdm(range(1, steps + 1), desc=f"self-training ({self.selection})", unit="round",
                         disable=not self.progress or steps == 0, leave=False):  # fmt: skip
            select_start = time.perf_counter()
            raw = cached_proba(self.estimators_[-1], X[unlabelled])
            proba, val_sharp, temperature = self._confidences(raw, val_proba, y_val)
            chosen, pseudo, thresholds = self._select(proba, step, val_sharp, y_val)
            rows = unlabelled[chosen]
            images, targets = self._student_data(X, y, rows, pseudo, seed=1000 * base.seed + step)
            select_seconds = time.perf_counter() - select_start
            correct = float((y_true[rows] == pseudo).mean()) if y_true is not None and len(rows) else np.nan
            enriched = y.copy()
            enriched[rows] = pseudo
            model, stage = self._student(step, base)
            model.fit(images, targets, eval_set=eval_set)
            self.estimators_.append(model)
            selection = {
                "n_pseudo": len(rows),
                "n_added": len(np.setdiff1d(rows, chosen_before)),
                "pseudo_accuracy": correct,
                "temperature": temperature,
                "thresholds": thresholds.round(4).tolist(),
                "select_seconds": select_seconds,
                "train_set": len(targets),
            }  # fmt: skip
            chosen_before = rows
            val_proba = self._log(model, stage, enriched, selection, eval_set)
        self.transduction_ = enriched
        self.n_iter_ = steps
        self.fit_seconds_ = time.perf_counter() - start
        return self
