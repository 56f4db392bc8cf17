"""Consistency-regularised semi-supervised training of the CNN (FixMatch).

FixMatch (Sohn et al., NeurIPS 2020) is confidence-threshold pseudo-labelling done online:
at every step the network labels a weakly augmented view of each unlabelled image, and
where it is confident enough it is trained to give that label to a strongly augmented
view of the same image, next to the usual cross-entropy on the labelled images. Offline
self-training (``bloodssl.methods.self_training.SelfTrainingCNN``) freezes its pseudo-labels for a
whole round; here they improve with every step.

Written here rather than taken from TorchSSL / USB: those frameworks are built around
their own GPU trainers and per-image PIL RandAugment, which on 2 CPU cores would cost
more than the 28x28 network itself. The batched tensor augmentation of
``bloodssl.data.augment`` keeps a step at a fraction of a second.
"""

from __future__ import annotations

import copy
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from sklearn.base import BaseEstimator, ClassifierMixin
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn
from tqdm.auto import tqdm

from bloodssl.core.checkpoints import (
    fingerprint,
    load_checkpoint,
    restore_training,
    save_checkpoint,
    signature,
    training_state,
)
from bloodssl.core.schedules import lr_factor, set_threads
from bloodssl.core.validation import check_threshold
from bloodssl.data import to_tensor
from bloodssl.data.augment import CellAugment, StrongAugment
from bloodssl.methods.staged import StagedNetworks
from bloodssl.methods.supervised import CNNClassifier

TEACHERS = ("online", "average")


class FixMatchCNN(StagedNetworks, ClassifierMixin, BaseEstimator):
    """FixMatch on top of a ``CNNClassifier``, in scikit-learn's semi-supervised shape.

    ``fit(X, y)`` trains ``estimator`` on the images whose label is not -1 (round 0), then
    continues from its weights for ``steps`` steps. Each step draws ``labelled_batch``
    labelled images (weak view, cross-entropy weighted like the estimator's
    ``class_weight``) and ``unlabelled_ratio`` times as many unlabelled ones: the network
    predicts the weak view without gradient, and where its confidence reaches ``threshold``
    the strong view (``strong``, default ``StrongAugment()``: dihedral, shift, colour
    jitter, cutout) is trained towards that label with weight ``unlabelled_weight``. The
    learning rate decays from ``lr`` on a cosine.

    Two guards against confirmation bias, both off in the original recipe:
    ``teacher="average"`` labels the weak views with the moving average of the weights
    (as Mean Teacher) instead of the network being trained; ``align=True`` applies
    distribution alignment (ReMixMatch): the teacher's probabilities are multiplied by the
    labelled class shares over a running mean of its predictions, so no class can take
    over the pseudo-labels.

    An exponential moving average of the weights (decay ``ema_decay``, via torch's
    ``AveragedModel``) is evaluated on ``eval_set`` every ``eval_every`` steps; the best
    average is kept, as ``CNNClassifier`` keeps its best epoch. A checkpoint at each
    evaluation (``checkpoint_dir``) lets an interrupted fit resume and a finished one cost
    nothing.

    After ``fit``: ``estimators_`` (the supervised network and the FixMatch one, a
    ``CNNClassifier`` with the averaged weights that predicts with the estimator's TTA),
    ``rounds_`` (as ``SelfTrainingCNN``: for the FixMatch stage ``n_pseudo`` and
    ``pseudo_accuracy`` describe the pseudo-labels of the last ``eval_every`` steps, scaled
    to the unlabelled set), ``history_`` (one record per evaluation) and ``n_iter_``.
    """

    def __init__(
        self,
        estimator: CNNClassifier | None = None,
        steps: int = 1000,
        labelled_batch: int = 64,
        unlabelled_ratio: int = 7,
        threshold: float = 0.95,
        unlabelled_weight: float = 1.0,
        teacher: str = "online",
        align: bool = False,
        strong: StrongAugment | None = None,
        lr: float = 0.03,
        ema_decay: float = 0.999,
        eval_every: int = 100,
        checkpoint_dir: str | Path | None = None,
        progress: bool = True,
    ):
        self.estimator = estimator
        self.steps = steps
        self.labelled_batch = labelled_batch
        self.unlabelled_ratio = unlabelled_ratio
        self.threshold = threshold
        self.unlabelled_weight = unlabelled_weight
        self.teacher = teacher
        self.align = align
        self.strong = strong
        self.lr = lr
        self.ema_decay = ema_decay
        self.eval_every = eval_every
        self.checkpoint_dir = checkpoint_dir
        self.progress = progress

    def _validate_params(self) -> None:
        check_threshold(self.threshold)
        if self.teacher not in TEACHERS:
            raise ValueError(f"unknown teacher {self.teacher!r}; choose one of {', '.join(TEACHERS)}")
        for name in ("steps", "labelled_batch", "unlabelled_ratio", "eval_every"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1, got {getattr(self, name)}")
        if not 0 <= self.ema_decay < 1:
            raise ValueError(f"ema_decay must be in [0, 1), got {self.ema_decay}; 0 evaluates the raw weights")
        if self.lr <= 0 or self.unlabelled_weight < 0:
            raise ValueError(f"lr must be positive and unlabelled_weight non-negative; got {self.lr}, "
                             f"{self.unlabelled_weight}")  # fmt: skip
        self._check_estimator()

    def _signature(self, base: CNNClassifier, X: np.ndarray, y: np.ndarray, eval_set) -> str:
        params = {k: v for k, v in self.get_params(deep=False).items() if k not in {"estimator", "checkpoint_dir",
                                                                                    "progress"}}  # fmt: skip
        start = [t.numpy() for t in base.model_.state_dict().values() if t.is_floating_point()]
        return signature(params, fingerprint(X, y, *(eval_set or ()), *start))

    def fit(self, X, y, eval_set: tuple | None = None, y_true=None) -> FixMatchCNN:
        """Train on ``X`` with labels ``y`` (-1 for unlabelled).

        ``eval_set=(X_val, y_val)`` selects the best averaged weights; without it the last
        are kept. ``y_true`` (the hidden labels of ``X``, if known) is used only to log how
        accurate the pseudo-labels are; it never reaches training.
        """
        self._validate_params()
        if not (np.asarray(y) < 0).any():
            raise ValueError("y has no unlabelled image (no -1); FixMatch needs unlabelled images to learn from")
        start = time.perf_counter()
        base, X, y, y_true, _ = self._fit_supervised(X, y, eval_set, y_true)
        unlabelled = np.flatnonzero(y < 0)
        model = self._train(base, X, y, unlabelled, eval_set, y_true)
        last = self.history_[-1]
        selection = {"n_pseudo": round(last["mask_rate"] * len(unlabelled)), "pseudo_accuracy": last["pseudo_accuracy"],
                     "threshold": self.threshold, "train_set": len(X)}  # fmt: skip
        self.estimators_.append(model)
        self._log(model, "fixmatch", y, selection, eval_set)
        self.transduction_ = y.copy()
        self.n_iter_ = 1
        self.fit_seconds_ = time.perf_counter() - start
        return self

    def _train(self, base: CNNClassifier, X, y, unlabelled, eval_set, y_true) -> CNNClassifier:
        """The FixMatch steps from ``base``'s weights; returns a ``CNNClassifier`` holding the
        best averaged weights."""
        set_threads(base.num_threads)
        torch.manual_seed(base.seed)
        generator = torch.Generator().manual_seed(base.seed)
        labelled = np.flatnonzero(y >= 0)
        images_l, targets_l = to_tensor(X[labelled]), torch.from_numpy(y[labelled])
        images_u = to_tensor(X[unlabelled])
        truth_u = None if y_true is None else torch.from_numpy(y_true[unlabelled])
        counts = torch.bincount(targets_l, minlength=base.n_classes).clamp(min=1).float()
        weight = counts.sum() / (base.n_classes * counts) if base.class_weight == "balanced" else None

        student = copy.deepcopy(base)
        network = student.model_
        average = AveragedModel(network, multi_avg_fn=get_ema_multi_avg_fn(self.ema_decay), use_buffers=True)
        average.module.eval()
        teacher = average.module if self.teacher == "average" else network
        prior = counts / counts.sum()
        optimizer = torch.optim.SGD(network.parameters(), lr=self.lr, momentum=0.9,
                                    weight_decay=base.weight_decay, nesterov=True)  # fmt: skip
        scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: lr_factor("cosine", s, self.steps))
        weak, strong = CellAugment(), self.strong or StrongAugment()

        checkpoint = self._checkpoint("fixmatch")
        key = self._signature(base, X, y, eval_set)
        state = load_checkpoint(checkpoint, key)
        if state is None:
            state = {"signature": key, "step": 0, "history": [], "best_score": -1.0, "best_step": 0,
                     "best_model": None, "seconds": 0.0, "prediction_mean": prior.clone()}  # fmt: skip
        else:
            restore_training(state, network, optimizer, scheduler, generator)
            average.load_state_dict(state["average"])

        n_unlabelled = self.labelled_batch * self.unlabelled_ratio
        window = {"loss": 0.0, "masked": 0, "correct": 0, "seen": 0, "seconds": 0.0}
        bar = tqdm(range(state["step"], self.steps), desc=f"FixMatch seed {base.seed}", unit="step",
                   disable=not self.progress, leave=False)  # fmt: skip
        for step in bar:
            tick = time.perf_counter()
            network.train()
            rows_l = torch.randint(len(images_l), (self.labelled_batch,), generator=generator)
            rows_u = torch.randint(len(images_u), (n_unlabelled,), generator=generator)
            batch_u = images_u[rows_u]
            with torch.no_grad():
                proba = F.softmax(teacher(weak(batch_u, generator)), 1)
                if self.align:
                    state["prediction_mean"].lerp_(proba.mean(0), 0.01)
                    proba = proba * prior / state["prediction_mean"]
                    proba /= proba.sum(1, keepdim=True)
                confidence, pseudo = proba.max(1)
                mask = (confidence >= self.threshold).float()
            views = torch.cat([weak(images_l[rows_l], generator), strong.on_tensor(batch_u, generator)])
            logits = network(views.contiguous(memory_format=torch.channels_last))
            loss_l = F.cross_entropy(logits[: self.labelled_batch], targets_l[rows_l], weight=weight)
            loss_u = (F.cross_entropy(logits[self.labelled_batch :], pseudo, reduction="none") * mask).mean()
            loss = loss_l + self.unlabelled_weight * loss_u
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            scheduler.step()
            average.update_parameters(network)

            window["loss"] += loss.item()
            window["masked"] += int(mask.sum())
            window["seen"] += n_unlabelled
            if truth_u is not None:
                window["correct"] += int(((pseudo == truth_u[rows_u]).float() * mask).sum())
            window["seconds"] += time.perf_counter() - tick
            if (step + 1) % self.eval_every == 0 or step + 1 == self.steps:
                state = self._evaluate(state, window, step + 1, student, average, eval_set, truth_u is not None)
                state.update(step=step + 1, average=average.state_dict(),
                             **training_state(network, optimizer, scheduler, generator))  # fmt: skip
                save_checkpoint(checkpoint, state)
                record = state["history"][-1]
                bar.set_postfix(loss=f"{record['loss']:.3f}", mask=f"{record['mask_rate']:.2f}",
                                val=f"{record.get('val_accuracy', float('nan')):.4f}")  # fmt: skip
                window = dict.fromkeys(window, 0)

        student.model_.load_state_dict(state["best_model"])
        student.model_.eval()
        student.history_ = self.history_ = state["history"]
        student.best_epoch_ = state["best_step"]
        student.fit_seconds_ = state["seconds"]
        batch = self.labelled_batch * (1 + self.unlabelled_ratio)
        student.train_images_per_second_ = batch * self.steps / max(state["seconds"], 1e-9)
        return student

    def _evaluate(self, state: dict, window: dict, step: int, student: CNNClassifier, average: AveragedModel,
                  eval_set, has_truth: bool) -> dict:  # fmt: skip
        """Log the window's losses and pseudo-label statistics, score the averaged weights
        on ``eval_set`` and keep them if they are the best so far."""
        steps = step - (state["history"][-1]["step"] if state["history"] else 0)
        images = steps * self.labelled_batch * (1 + self.unlabelled_ratio)
        record = {"step": step, "loss": window["loss"] / steps, "lr": self.lr * lr_factor("cosine", step, self.steps),
                  "mask_rate": window["masked"] / window["seen"],
                  "pseudo_accuracy": window["correct"] / window["masked"] if has_truth and window["masked"] else np.nan,
                  "images_per_second": images / window["seconds"]}  # fmt: skip
        start = time.perf_counter()
        score = 0.0
        if eval_set is not None:
            scorer = copy.copy(student)
            scorer.model_ = average.module
            score = float((scorer.predict_proba_tta(eval_set[0], "none").argmax(1) == eval_set[1]).mean())
            record["val_accuracy"] = score
        if score >= state["best_score"]:
            state.update(best_score=score, best_step=step, best_model=copy.deepcopy(average.module.state_dict()))
        state["seconds"] += window["seconds"] + time.perf_counter() - start
        state["history"].append(record)
        return state
