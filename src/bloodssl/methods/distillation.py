"""Distillation of an ensemble of few-label networks into one, on the online engine."""

from __future__ import annotations

import time

import numpy as np
import torch
import torch.nn.functional as F
from sklearn.base import clone

from bloodssl.core.checkpoints import load_checkpoint, save_checkpoint
from bloodssl.core.hashing import fingerprint, signature, weights_fingerprint
from bloodssl.core.prediction import TTA_MODES
from bloodssl.core.validation import check_fitted
from bloodssl.data.augment import StrongAugment
from bloodssl.methods.engine import Batch, Context, OnlineSSL, StepOutput
from bloodssl.methods.registry import register
from bloodssl.methods.supervised import CNNClassifier

#: teacher i of a run of seed s has seed s + i * TEACHER_SEED_STEP: never the seed of another run of the study
#: (seeds 0, 1, 2...), whose network would share its initial weights and augmentation stream
TEACHER_SEED_STEP = 1000


@register("distillation")
class EnsembleDistillationCNN(OnlineSSL):
    """Soft pseudo-labels from an ensemble of teachers (see ``OnlineSSL`` for the shared parameters).

    ``teachers`` networks learn the labelled images: round 0's and ``teachers - 1`` more that
    differ from it only in their seed (``TEACHER_SEED_STEP``). The mean of their probabilities
    on each unlabelled image (over the ``teacher_tta`` views), sharpened by ``temperature``
    (below 1 sharpens), is that image's soft label, fixed for the whole fit. The student starts
    from round 0's weights and learns the soft labels on strong views (``strong``, default
    ``StrongAugment()``), weight ``unlabelled_weight``, next to cross-entropy on the labelled
    images.

    Why, with very few labels: a network trained on 120 labels depends on its seed; the mean
    of several cancels part of that variance (an ensemble is more accurate and better
    calibrated than its members), and a student fitted to the ensemble's soft labels on every
    unlabelled image keeps much of that gain in one network (Hinton et al., 2015; the soft
    labels of Noisy Student, Xie et al., 2020). No threshold discards an image: a doubtful
    one carries a flat target. After ``fit``: ``teachers_`` (the networks beside round 0),
    ``soft_labels_`` (one row per unlabelled image, in order) and ``teacher_seconds_`` (training
    the teachers and labelling the images; a reloaded teacher or labelling costs what it first
    took, as a reloaded network does).
    """

    name = "distillation"

    def __init__(
        self,
        estimator: CNNClassifier | None = None,
        teachers: int = 3,
        temperature: float = 1.0,
        teacher_tta: str = "dihedral",
        steps: int = 1000,
        labelled_batch: int = 64,
        unlabelled_ratio: int = 7,
        unlabelled_weight: float = 1.0,
        strong: StrongAugment | None = None,
        lr: float = 0.03,
        ema_decay: float = 0.999,
        eval_every: int = 100,
        checkpoint_dir=None,
        progress: bool = True,
    ):
        self.estimator = estimator
        self.teachers = teachers
        self.temperature = temperature
        self.teacher_tta = teacher_tta
        self.steps = steps
        self.labelled_batch = labelled_batch
        self.unlabelled_ratio = unlabelled_ratio
        self.unlabelled_weight = unlabelled_weight
        self.strong = strong
        self.lr = lr
        self.ema_decay = ema_decay
        self.eval_every = eval_every
        self.checkpoint_dir = checkpoint_dir
        self.progress = progress

    def _validate_method(self) -> None:
        if self.teachers < 1:
            raise ValueError(f"teachers must be at least 1 (round 0's network), got {self.teachers}")
        if self.temperature <= 0:
            raise ValueError(f"temperature must be positive (1 keeps the ensemble's mean), got {self.temperature}")
        if self.teacher_tta not in TTA_MODES:
            raise ValueError(f"unknown teacher_tta {self.teacher_tta!r}; choose one of {', '.join(TTA_MODES)}")

    def prepare(self, base: CNNClassifier, X: np.ndarray, y: np.ndarray, eval_set) -> None:
        """Train the teachers beside ``base`` and label the unlabelled images (both reloaded
        from ``checkpoint_dir`` when they are there, with the seconds they first took)."""
        self.teachers_ = [
            clone(base).set_params(seed=base.seed + TEACHER_SEED_STEP * i, checkpoint=self._checkpoint(f"teacher{i}"))
            for i in range(1, self.teachers)
        ]
        for teacher in self.teachers_:
            teacher.fit(X, y, eval_set)
        networks, unlabelled = [base, *self.teachers_], X[y < 0]
        settings = {"teacher_tta": self.teacher_tta, "temperature": self.temperature}
        key = signature(settings, fingerprint(unlabelled) + "".join(weights_fingerprint(n.model_) for n in networks))
        path = self._checkpoint("soft_labels")
        state = load_checkpoint(path, key)
        if state is None:
            start = time.perf_counter()
            proba = np.mean([net.predict_proba_tta(unlabelled, self.teacher_tta) for net in networks], 0)
            sharpened = proba ** (1 / self.temperature)
            soft = torch.from_numpy((sharpened / sharpened.sum(1, keepdims=True)).astype(np.float32))
            state = {"signature": key, "soft_labels": soft, "seconds": time.perf_counter() - start}
            save_checkpoint(path, state)
        self.soft_labels_ = state["soft_labels"]
        self.teacher_seconds_ = sum(teacher.fit_seconds_ for teacher in self.teachers_) + state["seconds"]

    def prepared_fingerprint(self) -> str:
        return fingerprint(self.soft_labels_.numpy())

    def soft_label_accuracy(self, y_true) -> float:
        """The share of the unlabelled images whose soft label puts the true class (``y_true``:
        the hidden labels of the images ``fit`` saw) first."""
        check_fitted(self, "soft_labels_")
        hidden = np.asarray(y_true)[self.transduction_ < 0]
        return float((self.soft_labels_.argmax(1).numpy() == hidden).mean())

    def train_step(self, context: Context, batch: Batch) -> StepOutput:
        targets = self.soft_labels_[batch.rows]
        strong = self.strong or StrongAugment()
        views = torch.cat([context.weak(batch.labelled, context.generator),
                           strong.on_tensor(batch.unlabelled, context.generator)])  # fmt: skip
        logits = context.forward(views)
        n = len(batch.labelled)
        loss_u = F.cross_entropy(logits[n:], targets)  # against the whole distribution, not its argmax
        loss = context.supervised_loss(logits[:n], batch.targets) + self.unlabelled_weight * loss_u
        return StepOutput(loss, targets.argmax(1), torch.ones(len(targets)))
