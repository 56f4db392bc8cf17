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
from collections import OrderedDict
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from sklearn.base import BaseEstimator, ClassifierMixin, clone
from tqdm.auto import tqdm

from bloodssl import results
from bloodssl.augment import colour_jitter, random_cutout, random_dihedral, random_shift
from bloodssl.data import Split, to_tensor
from bloodssl.evaluate import Evaluation, evaluate
from bloodssl.profiles import get_profile
from bloodssl.splits import labelled_subset, mask_labels
from bloodssl.supervised import checkpoint_path
from bloodssl.train import CNNClassifier, _as_images, _as_labels, _fingerprint

SELECTIONS = ("threshold", "per_class", "top_k")


def _check_threshold(value: float, name: str = "threshold") -> None:
    if not 0 < value <= 1:
        raise ValueError(f"{name} must be in (0, 1], got {value}; e.g. 0.97 keeps only very confident predictions")


def select_confident(
    proba: np.ndarray,
    threshold: float | np.ndarray = 0.97,
    *,
    candidates: np.ndarray | None = None,
    top_k_per_class: int | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Indices (into ``proba``) and predicted labels of the rows confident enough to pseudo-label.

    ``threshold`` is one number or one per class (applied to the predicted class).
    ``candidates`` (indices or a boolean mask) restricts the eligible rows, e.g. to the
    unlabelled images not queried this round. ``top_k_per_class`` keeps at most the ``k``
    most confident rows of each predicted class, a class-balanced selection that stops
    the common classes from swamping the rare ones.
    """
    proba = np.asarray(proba)
    thresholds = np.broadcast_to(np.asarray(threshold, dtype=float), (proba.shape[1],))
    for value in np.unique(thresholds):
        _check_threshold(float(value))
    if top_k_per_class is not None and top_k_per_class < 1:
        raise ValueError(f"top_k_per_class must be at least 1, got {top_k_per_class}")
    eligible = np.zeros(len(proba), bool)
    if candidates is None:
        eligible[:] = True
    else:
        eligible[np.asarray(candidates)] = True
    predicted = proba.argmax(1)
    confidence = proba.max(1)
    chosen = np.flatnonzero(eligible & (confidence >= thresholds[predicted]))
    if top_k_per_class is not None:
        keep = []
        for label in np.unique(predicted[chosen]):
            of_class = chosen[predicted[chosen] == label]
            keep.append(of_class[np.argsort(-confidence[of_class], kind="stable")[:top_k_per_class]])
        chosen = np.sort(np.concatenate(keep)) if keep else chosen
    return chosen, predicted[chosen]


# -- confidences -------------------------------------------------------------------------------


def sharpen(proba: np.ndarray, temperature: float) -> np.ndarray:
    """``proba`` re-tempered: ``softmax(log(proba) / temperature)``; below 1 sharpens, above 1 softens."""
    if not temperature > 0:
        raise ValueError(f"temperature must be positive, got {temperature}; 1 leaves the probabilities unchanged")
    logits = np.log(np.clip(np.asarray(proba, dtype=np.float64), 1e-12, 1.0)) / temperature
    logits -= logits.max(1, keepdims=True)
    out = np.exp(logits)
    return out / out.sum(1, keepdims=True)


def fit_temperature(proba: np.ndarray, y: np.ndarray, grid: np.ndarray | None = None) -> float:
    """Temperature scaling (Guo et al., 2017): the temperature that minimises the negative
    log-likelihood of held-out labels ``y`` under ``sharpen(proba, temperature)``."""
    y = np.asarray(y)
    grid = np.geomspace(0.05, 5.0, 200) if grid is None else np.asarray(grid)
    rows = np.arange(len(y))
    nll = [-np.log(sharpen(proba, t)[rows, y] + 1e-12).mean() for t in grid]
    return float(grid[int(np.argmin(nll))])


def per_class_thresholds(proba: np.ndarray, y: np.ndarray, precision: float = 0.97) -> np.ndarray:
    """One confidence threshold per class, tuned on held-out labels ``y`` (the validation split).

    For class ``c`` it is the lowest confidence at which the predictions of ``c`` at least
    that confident are still ``precision`` correct; 1.0 (only certain predictions) where no
    confidence reaches it. Easy classes get low thresholds, confusable ones high.
    """
    _check_threshold(precision, "precision")
    proba, y = np.asarray(proba), np.asarray(y)
    predicted, confidence = proba.argmax(1), proba.max(1)
    thresholds = np.ones(proba.shape[1])
    for label in range(proba.shape[1]):
        rows = np.flatnonzero(predicted == label)
        order = rows[np.argsort(-confidence[rows], kind="stable")]
        running = np.cumsum(y[order] == label) / np.arange(1, len(order) + 1)
        reached = np.flatnonzero(running >= precision)
        if len(reached):
            thresholds[label] = confidence[order[reached[-1]]]
    return thresholds


# -- noisy student: strong offline views, cached teacher predictions ---------------------------


@dataclass(frozen=True)
class StrongAugment:
    """A strong view of uint8 images (N, H, W, 3): dihedral transform, shift of up to
    ``max_shift`` pixels, colour jitter of ``jitter`` and a grey ``cutout`` x ``cutout`` patch.

    The student of a round trains on such views of the pseudo-labelled images (on top of
    its own mild augmentation) while the teacher labelled the clean images: the noisy
    student recipe, which makes the student learn more than its teacher knew.
    """

    max_shift: int = 4
    jitter: float = 0.4
    cutout: int = 10

    def __call__(self, images: np.ndarray, generator: torch.Generator) -> np.ndarray:
        x = self.on_tensor(to_tensor(images), generator)
        return x.mul(255).round_().clamp_(0, 255).to(torch.uint8).permute(0, 2, 3, 1).numpy()

    def on_tensor(self, images: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        """The same views of a float batch (N, C, H, W) in [0, 1], for online training."""
        x = random_shift(random_dihedral(images, generator), self.max_shift, generator)
        return random_cutout(colour_jitter(x, self.jitter, self.jitter, self.jitter, generator), self.cutout, generator)


_PROBA_CACHE: OrderedDict[str, np.ndarray] = OrderedDict()


def cached_proba(model: CNNClassifier, X: np.ndarray, size: int = 16) -> np.ndarray:
    """``model.predict_proba(X)``, remembered for the same weights and images.

    Every method of a sweep starts from the same round-0 network, so its TTA predictions on
    the unlabelled, validation and test images are computed once, not once per method.
    """
    weights = [t.numpy() for t in model.model_.state_dict().values() if t.is_floating_point()]
    key = _fingerprint(np.asarray(X), *weights) + model.tta
    if key not in _PROBA_CACHE:
        _PROBA_CACHE[key] = model.predict_proba(X)
        while len(_PROBA_CACHE) > size:
            _PROBA_CACHE.popitem(last=False)
    _PROBA_CACHE.move_to_end(key)
    return _PROBA_CACHE[key]


# -- the estimator -----------------------------------------------------------------------------


class StagedNetworks:
    """What the semi-supervised CNN estimators share: ``estimators_`` holds the network of
    each stage (round 0 is the supervised one, the last predicts) and ``rounds_`` one
    record per stage, in the shape ``Run`` and the notebooks read. They take a
    ``CNNClassifier`` as ``estimator`` and keep checkpoints in ``checkpoint_dir``."""

    def _fit_supervised(self, X, y, eval_set, y_true) -> tuple:
        """Round 0: check ``X``, ``y`` and ``y_true``, train (or reload from
        ``checkpoint_dir``) the estimator on the labelled images and log it. Returns the
        network, the checked arrays and the network's validation probabilities."""
        base = clone(self.estimator) if self.estimator is not None else CNNClassifier()
        X = _as_images(X)
        y = _as_labels(y, len(X), base.n_classes)
        if y_true is not None:
            y_true = _as_labels(y_true, len(X), base.n_classes)
        if base.checkpoint is None and self.checkpoint_dir is not None:
            base.set_params(checkpoint=self._checkpoint("round0"))
        base.fit(X, y, eval_set=eval_set)
        self.classes_ = base.classes_
        self.estimators_, self.rounds_ = [base], []
        return base, X, y, y_true, self._log(base, "supervised", y, None, eval_set)

    def _check_estimator(self) -> None:
        if self.estimator is not None and not isinstance(self.estimator, CNNClassifier):
            raise ValueError(
                f"estimator must be a bloodssl.train.CNNClassifier, got {type(self.estimator).__name__}; "
                "wrap other models' parameters in CNNClassifier(model=...)"
            )

    def _checkpoint(self, name: str) -> Path | None:
        return None if self.checkpoint_dir is None else Path(self.checkpoint_dir) / f"{name}.pt"

    def _log(self, model: CNNClassifier, stage: str, labels: np.ndarray, selection: dict | None,
             eval_set) -> np.ndarray | None:  # fmt: skip
        """Append this round's record to ``rounds_``; return the model's validation probabilities."""
        val_proba = None if eval_set is None else cached_proba(model, eval_set[0])
        record = {
            "round": len(self.rounds_),
            "stage": stage,
            "n_labels": int((labels >= 0).sum()),
            "n_pseudo": 0,
            "n_added": 0,
            "pseudo_accuracy": np.nan,
            "train_set": model.n_labels_,
            **(selection or {}),
            "class_counts": np.bincount(labels[labels >= 0], minlength=len(self.classes_)).tolist(),
            "val_accuracy": np.nan if val_proba is None else float((val_proba.argmax(1) == eval_set[1]).mean()),
            "epochs": len(model.history_),
            "fit_seconds": model.fit_seconds_,
            "train_images_per_second": model.train_images_per_second_,
        }
        self.rounds_.append(record)
        return val_proba

    def predict_proba(self, X) -> np.ndarray:
        """Class probabilities of the last network (TTA-averaged like ``CNNClassifier``)."""
        return self.estimators_[-1].predict_proba(X)

    def predict(self, X) -> np.ndarray:
        return self.predict_proba(X).argmax(1)

    def staged_predict_proba(self, X) -> Iterator[np.ndarray]:
        """The probabilities of each round's network in turn (round 0 = supervised only)."""
        for model in self.estimators_:
            yield cached_proba(model, X)

    def transform(self, X) -> np.ndarray:
        """Penultimate embeddings of the last network."""
        return self.estimators_[-1].transform(X)


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
        _check_threshold(self.threshold)
        _check_threshold(self.precision, "precision")
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


# -- notebook 04: sizes, methods, sweep --------------------------------------------------------


@dataclass(frozen=True)
class Schedule:
    """A longer FixMatch schedule: ``params`` override ``Plan.fixmatch`` (at least ``steps``),
    run on every seed at ``fractions``."""

    params: dict
    fractions: tuple[float, ...]

    @property
    def method(self) -> str:
        """The method's name in the results, e.g. ``fixmatch-3000``."""
        return f"fixmatch-{self.params['steps']}"


@dataclass(frozen=True)
class Plan:
    """What notebook 04 runs at one profile.

    Every method starts from the same round-0 CNN (``base``: ``CNNClassifier`` parameters)
    and uses ``self_training`` (``SelfTrainingCNN`` parameters). The ``headline`` method runs
    on every fraction and seed of the profile; the other selection rules, compared side by
    side with it, run on the first seed at ``compare_fractions`` with ``compare_rounds``
    rounds (their round 1 is the headline's round 1 with another rule), which keeps the
    comparison affordable on 2 cores. ``fixmatch`` holds the ``FixMatchCNN`` parameters of
    the FixMatch runs, on every fraction and seed; each of ``longer`` reruns them on a longer
    schedule (is the schedule the limit?).
    """

    fractions: tuple[float, ...]
    thresholds: tuple[float, ...]
    headline: str
    compare_rounds: int
    compare_fractions: tuple[float, ...]
    base: dict = field(default_factory=dict)
    self_training: dict = field(default_factory=dict)
    fixmatch: dict = field(default_factory=dict)
    longer: tuple[Schedule, ...] = ()


_BASE = dict(model="cnn", class_weight="balanced", min_epoch_samples=4096)
SIZES: dict[str, Plan] = {
    "smoke": Plan(
        fractions=(0.1,), thresholds=(0.5, 0.9), headline="threshold-0.5", compare_rounds=1, compare_fractions=(0.1,),
        base={**_BASE, "epochs": 2, "min_epoch_samples": 256, "batch_size": 64},
        self_training=dict(rounds=2, round_epochs=1, strong_views=1, top_k=10, precision=0.9),
        fixmatch=dict(steps=10, eval_every=5, labelled_batch=16, unlabelled_ratio=2, teacher="average", align=True),
        longer=(Schedule(dict(steps=20, eval_every=10), (0.1,)),),
    ),
    "default": Plan(
        fractions=(0.01, 0.05), thresholds=(0.5, 0.7, 0.9, 0.97, 0.99), headline="threshold-0.5", compare_rounds=1,
        compare_fractions=(0.05,),
        base={**_BASE, "epochs": 20},
        # one round: measured at 5 % labels (seed 0) a second round left the student where the first one
        # put it (test 92.9 % both, pseudo-labels 93.8 % then 93.6 % right) for another 1.8 minutes
        self_training=dict(rounds=1, round_epochs=6, strong_views=2, top_k=500, precision=0.97),
        # measured at 1 % labels (seed 0): the plain recipe (online teacher, no alignment) let its pseudo-labels
        # drift from 95 % to 87 % right and ended below the supervised CNN; the guards keep them near 94 %
        fixmatch=dict(steps=1000, eval_every=100, threshold=0.95, ema_decay=0.995, teacher="average", align=True),
        # the 1000-step runs' validation accuracy still rises at the last step: 3x the schedule (~18 min a run);
        # at 5 % the 3000-step runs' validation accuracy still rose too, so 9x there (~50 min a run)
        longer=(Schedule(dict(steps=3000, eval_every=200, ema_decay=0.997), (0.01, 0.05)),
                Schedule(dict(steps=9000, eval_every=500, ema_decay=0.999), (0.05,))),
    ),
    "full": Plan(
        fractions=(0.01, 0.05, 0.1), thresholds=(0.5, 0.7, 0.9, 0.97, 0.99), headline="threshold-0.5",
        compare_rounds=3, compare_fractions=(0.01, 0.05, 0.1), base={**_BASE, "epochs": 40},
        self_training=dict(rounds=3, round_epochs=10, strong_views=4, top_k=500, precision=0.97),
        fixmatch=dict(steps=3000, eval_every=200, threshold=0.95, ema_decay=0.997, teacher="average", align=True),
        # ~50 min a run on 2 cores, six runs: a machine with more cores
        longer=(Schedule(dict(steps=9000, eval_every=500, ema_decay=0.999), (0.01, 0.05)),),
    ),
}  # fmt: skip


def plan(profile: str) -> Plan:
    """Notebook 04's sizes for ``profile`` (smoke, default or full)."""
    get_profile(profile)
    return SIZES[profile]


def methods(sizes: Plan, **overrides) -> dict[str, dict]:
    """The selection rules by name (``threshold-<t>``, ``per_class``, ``top_k``) as
    ``SelfTrainingCNN`` parameters without ``estimator``; ``overrides`` replace any of them."""
    shared = {**sizes.self_training, **overrides}
    out = {f"threshold-{t:g}": {**shared, "selection": "threshold", "threshold": t} for t in sizes.thresholds}
    out["per_class"] = {**shared, "selection": "per_class"}
    out["top_k"] = {**shared, "selection": "top_k"}
    return out


@dataclass
class Run:
    """One self-trained classifier at one label fraction and seed, evaluated round by round."""

    method: str
    fraction: float
    seed: int
    classifier: StagedNetworks
    evaluations: dict[str, Evaluation]
    round_evaluations: list[Evaluation]
    inference_images_per_second: float

    def rounds(self) -> pd.DataFrame:
        """The classifier's round log with the test accuracy and macro-F1 of each round."""
        table = pd.DataFrame(self.classifier.rounds_)
        table["test_accuracy"] = [e.metrics["accuracy"] for e in self.round_evaluations]
        table["test_macro_f1"] = [e.metrics["macro_f1"] for e in self.round_evaluations]
        return table.assign(method=self.method, label_fraction=self.fraction, seed=self.seed)

    def wall_seconds(self) -> float:
        """Training seconds of every network plus the seconds spent choosing pseudo-labels."""
        clf = self.classifier
        return sum(m.fit_seconds_ for m in clf.estimators_) + sum(r.get("select_seconds", 0.0) for r in clf.rounds_)

    def rows(self, profile: str) -> list[dict]:
        """Tidy rows: final val/test metrics, per-round metrics (``round<r>_...``) and speed."""
        clf = self.classifier
        keys = dict(method=self.method, model=clf.estimators_[0].model, label_fraction=self.fraction,
                    n_labels=clf.estimators_[0].n_labels_, seed=self.seed, profile=profile,
                    wall_seconds=self.wall_seconds())  # fmt: skip
        out = []
        for split, evaluation in self.evaluations.items():
            out += results.rows(evaluation.metrics, split=split, **keys)
        for record, evaluation in zip(clf.rounds_, self.round_evaluations, strict=True):
            r = record["round"]
            out += results.rows(
                {
                    f"round{r}_accuracy": evaluation.metrics["accuracy"],
                    f"round{r}_macro_f1": evaluation.metrics["macro_f1"],
                },
                split="test",
                **keys,
            )
            out += results.rows({f"round{r}_pseudo_labels": record["n_pseudo"],
                                 f"round{r}_pseudo_label_accuracy": record["pseudo_accuracy"],
                                 f"round{r}_val_accuracy": record["val_accuracy"]}, split="train", **keys)  # fmt: skip
        seconds = sum(m.fit_seconds_ for m in clf.estimators_)
        images = sum(m.train_images_per_second_ * m.fit_seconds_ for m in clf.estimators_)
        out += results.rows({"train_images_per_second": images / max(seconds, 1e-9), "rounds": clf.n_iter_},
                            split="train", **keys)  # fmt: skip
        out += results.rows({"inference_images_per_second": self.inference_images_per_second},
                            split="test", **keys)  # fmt: skip
        return out

    def supervised_rows(self, profile: str) -> list[dict]:
        """The round-0 network (labels only) as ``method='supervised'`` rows: the baseline,
        with its validation accuracy so that it competes with the methods on validation."""
        base = self.classifier.estimators_[0]
        keys = dict(method="supervised", model=base.model, label_fraction=self.fraction, n_labels=base.n_labels_,
                    seed=self.seed, profile=profile, wall_seconds=base.fit_seconds_)  # fmt: skip
        test = results.rows(self.round_evaluations[0].metrics, split="test", **keys)
        return test + results.rows({"accuracy": self.classifier.rounds_[0]["val_accuracy"]}, split="val", **keys)


def self_train(
    splits: Mapping[str, Split],
    *,
    method: str,
    params: Mapping,
    base: Mapping,
    fraction: float,
    seed: int,
    stem: str,
    profile: str,
    algorithm: type = SelfTrainingCNN,
) -> Run:
    """Self-train one ``method`` on ``fraction`` of the training labels and evaluate it.

    The round-0 CNN's checkpoint is shared by every method at the same fraction and seed,
    so it is trained once. ``algorithm`` is ``SelfTrainingCNN`` or another estimator of the
    same shape (``bloodssl.consistency.FixMatchCNN``). The hidden training labels only feed
    the pseudo-label accuracy log; the test split is predicted once per round, for reporting.
    """
    train, val, test = splits["train"], splits["val"], splits["test"]
    labelled = labelled_subset(train.labels, fraction=fraction, seed=seed)
    model = base.get("model", "cnn")
    shared = checkpoint_path(stem, "supervised", model, fraction, seed, profile)
    estimator = CNNClassifier(**base, seed=seed, progress=False, checkpoint=shared)
    folder = checkpoint_path(stem, method, model, fraction, seed, profile).with_suffix("")
    classifier = algorithm(estimator, **params, checkpoint_dir=folder)
    classifier.fit(train.images, mask_labels(train.labels, labelled), eval_set=(val.images, val.labels),
                   y_true=train.labels)  # fmt: skip
    staged = [evaluate(test.labels, proba) for proba in classifier.staged_predict_proba(test.images)]
    evaluations = {"val": evaluate(val.labels, cached_proba(classifier.estimators_[-1], val.images)),
                   "test": staged[-1]}  # fmt: skip
    speed = classifier.estimators_[-1].throughput(test.images[:512])
    return Run(method, fraction, seed, classifier, evaluations, staged, speed)


def sweep(
    splits: Mapping[str, Split],
    methods: Mapping[str, Mapping],
    *,
    fractions: Iterable[float],
    seeds: Iterable[int],
    base: Mapping,
    stem: str,
    profile: str,
    algorithm: type = SelfTrainingCNN,
) -> tuple[list[Run], pd.DataFrame]:
    """Every (method, fraction, seed) of ``algorithm``; returns the runs and their tidy
    results, with the round-0 supervised baseline once per (fraction, seed)."""
    jobs = [(m, f, s) for f in fractions for s in seeds for m in methods]
    shared = dict(base=base, stem=stem, profile=profile, algorithm=algorithm)
    runs = [
        self_train(splits, method=m, params=methods[m], fraction=f, seed=s, **shared)
        for m, f, s in tqdm(jobs, desc=f"{algorithm.__name__} runs", unit="run")
    ]
    records = [row for run in runs for row in run.rows(profile)]
    baselines = {(run.fraction, run.seed): run for run in runs}
    records += [row for run in baselines.values() for row in run.supervised_rows(profile)]
    return runs, results.frame(records)


def final_networks(runs: Iterable[Run], method: str) -> list[tuple[Run, CNNClassifier, Evaluation]]:
    """The network ``method`` ends with in each of ``runs``, with its test evaluation: the
    last network of the runs of ``method``; for ``supervised``, the round-0 network, once
    per fraction and seed (every method of a fraction and seed starts from the same one)."""
    if method == "supervised":
        firsts = {(run.fraction, run.seed): run for run in runs}
        return [(run, run.classifier.estimators_[0], run.round_evaluations[0]) for run in firsts.values()]
    chosen = [(run, run.classifier.estimators_[-1], run.evaluations["test"]) for run in runs if run.method == method]
    if not chosen:
        raise ValueError(f"no run of method {method!r} among the runs given")
    return chosen


def final_probabilities(
    runs: Iterable[Run], methods: Iterable[str], images: np.ndarray
) -> dict[int, dict[str, np.ndarray]]:
    """Per seed, the probabilities that the final network of each of ``methods`` (as
    ``final_networks``) gives ``images``; only the seeds on which every method ran.
    ``runs`` must share one label fraction."""
    runs, methods = list(runs), list(methods)
    fractions = {run.fraction for run in runs}
    if len(fractions) > 1:
        raise ValueError(f"runs span label fractions {sorted(fractions)}; pass the runs of one fraction")
    by_seed: dict[int, dict[str, np.ndarray]] = {}
    for method in methods:
        for run, network, _ in final_networks(runs, method):
            by_seed.setdefault(run.seed, {})[method] = cached_proba(network, images)
    return {seed: proba for seed, proba in sorted(by_seed.items()) if len(proba) == len(methods)}


def round_table(runs: Iterable[Run]) -> pd.DataFrame:
    """The round logs of ``runs`` stacked (one row per run and round)."""
    return pd.concat([run.rounds() for run in runs], ignore_index=True)
