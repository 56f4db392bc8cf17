"""The training engine of every online semi-supervised method (FixMatch, FlexMatch, Mean Teacher,
ensemble distillation).

``OnlineSSL`` owns what such methods share, written once: round 0 (the supervised network
the method starts from), seeding, the optimiser and its cosine schedule, the moving average
of the weights (the teacher of Mean Teacher, the evaluated network of all), the evaluation
cadence, the checkpoint that resumes bit for bit, the history and the choice of the best
averaged weights on the validation split. A method subclasses it, lists its own parameters
and writes ``train_step``: the loss of one labelled and one unlabelled batch (the shape of
USB's ``AlgorithmBase.train_step``, on batched CPU tensors instead of per-image PIL views).
"""

from __future__ import annotations

import copy
import time
from dataclasses import dataclass
from typing import ClassVar

import numpy as np
import torch
import torch.nn.functional as F
from sklearn.base import BaseEstimator, ClassifierMixin
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn
from tqdm.auto import tqdm

from bloodssl.core.checkpoints import load_checkpoint, restore_training, save_checkpoint, training_state
from bloodssl.core.hashing import fingerprint, signature, weights_fingerprint
from bloodssl.core.losses import class_weights
from bloodssl.core.schedules import lr_factor, set_threads
from bloodssl.data import to_tensor
from bloodssl.data.augment import CellAugment
from bloodssl.methods.staged import StagedNetworks
from bloodssl.methods.supervised import CNNClassifier


@dataclass
class Batch:
    """One step's images: ``labelled`` with their ``targets``, and ``unlabelled`` (rows
    ``rows`` of the unlabelled set), all float (N, C, H, W) in [0, 1], not yet augmented."""

    labelled: torch.Tensor
    targets: torch.Tensor
    unlabelled: torch.Tensor
    rows: torch.Tensor


@dataclass
class Context:
    """What ``train_step`` may use: the ``network`` being trained, its moving ``average``
    (no gradient), the weak augmentation, the random ``generator`` every view must draw
    from, the labelled class ``prior`` and ``weight`` of the supervised loss, the ``step``
    (from 0) of ``steps``, and ``state``: the method's own tensors, saved in the checkpoint."""

    network: torch.nn.Module
    average: torch.nn.Module
    weak: CellAugment
    generator: torch.Generator
    prior: torch.Tensor
    weight: torch.Tensor | None
    step: int
    steps: int
    state: dict

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """The trained network's logits of ``images`` (channels-last, the fast layout on CPU)."""
        return self.network(images.contiguous(memory_format=torch.channels_last))

    def supervised_loss(self, logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        """Cross-entropy on labelled images, class-weighted like the estimator."""
        return F.cross_entropy(logits, targets, weight=self.weight)


@dataclass
class StepOutput:
    """The loss of one step and, for a pseudo-labelling method, the pseudo-labels of the
    unlabelled batch and the mask (1 where one was used): the engine logs how many and how
    accurate they are."""

    loss: torch.Tensor
    pseudo: torch.Tensor | None = None
    mask: torch.Tensor | None = None


class OnlineSSL(StagedNetworks, ClassifierMixin, BaseEstimator):
    """Base of the online semi-supervised estimators, in scikit-learn's semi-supervised shape.

    ``fit(X, y)`` trains ``estimator`` on the images whose label is not -1 (round 0), then
    continues from its weights for ``steps`` steps of ``labelled_batch`` labelled and
    ``labelled_batch * unlabelled_ratio`` unlabelled images, the loss given by the
    subclass's ``train_step``; SGD with Nesterov momentum, peak learning rate ``lr`` on a
    cosine. An exponential moving average of the weights (decay ``ema_decay``) is evaluated
    on ``eval_set`` every ``eval_every`` steps; the best average is kept and predicts. A
    checkpoint at each evaluation (``checkpoint_dir``) resumes an interrupted fit and
    makes a finished one free.

    After ``fit``: ``estimators_`` (the supervised network and the final one, a
    ``CNNClassifier`` with the averaged weights that predicts with the estimator's TTA),
    ``rounds_`` (``n_pseudo`` and ``pseudo_accuracy`` of the final stage describe the
    pseudo-labels of the last ``eval_every`` steps, scaled to the unlabelled set),
    ``history_`` (one record per evaluation) and ``n_iter_``.
    """

    #: the stage name in ``rounds_`` and the checkpoint's file name
    name: ClassVar[str] = "online"
    #: parameters that change neither the training nor its result
    _NOT_TRAINING: ClassVar[frozenset] = frozenset({"estimator", "checkpoint_dir", "progress"})

    def train_step(self, context: Context, batch: Batch) -> StepOutput:
        """The loss of one step; every random view must draw from ``context.generator``."""
        raise NotImplementedError

    def prepare(self, base: CNNClassifier, X: np.ndarray, y: np.ndarray, eval_set) -> None:
        """Work the method does once, after round 0 (``base``) and before the steps, on the
        checked images and labels (nothing by default; teachers of a distillation)."""

    def prepared_fingerprint(self) -> str:
        """A fingerprint of what ``prepare`` made, part of the steps' checkpoint signature: when
        it changes (other teachers, other soft labels) the steps are taken again, never reloaded."""
        return ""

    def init_state(self, n_unlabelled: int, prior: torch.Tensor) -> dict:
        """The method's own tensors at step 0 (kept in ``Context.state`` and the checkpoint)."""
        return {}

    def _validate_method(self) -> None:
        """Checks of the subclass's own parameters (raise ``ValueError`` naming the fix)."""

    def _validate_params(self) -> None:
        for name in ("steps", "labelled_batch", "unlabelled_ratio", "eval_every"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1, got {getattr(self, name)}")
        if not 0 <= self.ema_decay < 1:
            raise ValueError(f"ema_decay must be in [0, 1), got {self.ema_decay}; 0 evaluates the raw weights")
        if self.lr <= 0 or self.unlabelled_weight < 0:
            raise ValueError(f"lr must be positive and unlabelled_weight non-negative; got {self.lr}, "
                             f"{self.unlabelled_weight}")  # fmt: skip
        self._validate_method()
        self._check_estimator()

    def _signature(self, base: CNNClassifier, X: np.ndarray, y: np.ndarray, eval_set) -> str:
        params = {k: v for k, v in self.get_params(deep=False).items() if k not in self._NOT_TRAINING}
        data = fingerprint(X, y, *(eval_set or ())) + weights_fingerprint(base.model_) + self.prepared_fingerprint()
        return signature(params, data)

    def fit(self, X, y, eval_set: tuple | None = None, y_true=None) -> OnlineSSL:
        """Train on ``X`` with labels ``y`` (-1 for unlabelled).

        ``eval_set=(X_val, y_val)`` selects the best averaged weights; without it the last
        are kept. ``y_true`` (the hidden labels of ``X``, if known) is used only to log how
        accurate the pseudo-labels are; it never reaches training.
        """
        self._validate_params()
        if not (np.asarray(y) < 0).any():
            raise ValueError(f"y has no unlabelled image (no -1); {type(self).__name__} needs unlabelled images "
                             "to learn from")  # fmt: skip
        start = time.perf_counter()
        base, X, y, y_true, _ = self._fit_supervised(X, y, eval_set, y_true)
        unlabelled = np.flatnonzero(y < 0)
        self.prepare(base, X, y, eval_set)
        model = self._train(base, X, y, unlabelled, eval_set, y_true)
        last = self.history_[-1]
        selection = {"train_set": len(X)}
        if not np.isnan(last["mask_rate"]):
            selection.update(n_pseudo=round(last["mask_rate"] * len(unlabelled)),
                             pseudo_accuracy=last["pseudo_accuracy"])  # fmt: skip
        self.estimators_.append(model)
        self._log(model, self.name, y, selection, eval_set)
        self.transduction_ = y.copy()
        self.n_iter_ = 1
        self.fit_seconds_ = time.perf_counter() - start
        return self

    def _train(self, base: CNNClassifier, X, y, unlabelled, eval_set, y_true) -> CNNClassifier:
        """The online steps from ``base``'s weights; returns a ``CNNClassifier`` holding the
        best averaged weights."""
        set_threads(base.num_threads)
        torch.manual_seed(base.seed)
        generator = torch.Generator().manual_seed(base.seed)
        labelled = np.flatnonzero(y >= 0)
        images_l, targets_l = to_tensor(X[labelled]), torch.from_numpy(y[labelled])
        images_u = to_tensor(X[unlabelled])
        truth_u = None if y_true is None else torch.from_numpy(y_true[unlabelled])
        weight = class_weights(targets_l, base.n_classes_, base.class_weight)

        student = copy.deepcopy(base)
        network = student.model_
        average = AveragedModel(network, multi_avg_fn=get_ema_multi_avg_fn(self.ema_decay), use_buffers=True)
        average.module.eval()
        counts = torch.bincount(targets_l, minlength=base.n_classes_).clamp(min=1).float()
        prior = counts / counts.sum()
        optimizer = torch.optim.SGD(network.parameters(), lr=self.lr, momentum=0.9,
                                    weight_decay=base.weight_decay, nesterov=True)  # fmt: skip
        scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: lr_factor("cosine", s, self.steps))

        checkpoint = self._checkpoint(self.name)
        key = self._signature(base, X, y, eval_set)
        state = load_checkpoint(checkpoint, key)
        if state is None:
            state = {"signature": key, "step": 0, "history": [], "best_score": -1.0, "best_step": 0,
                     "best_model": None, "seconds": 0.0, "method": self.init_state(len(images_u), prior)}  # fmt: skip
        else:
            restore_training(state, network, optimizer, scheduler, generator)
            average.load_state_dict(state["average"])
        context = Context(network, average.module, CellAugment(), generator, prior, weight, state["step"], self.steps,
                          state["method"])  # fmt: skip

        n_unlabelled = self.labelled_batch * self.unlabelled_ratio
        window = {"loss": 0.0, "masked": 0, "correct": 0, "seen": 0, "seconds": 0.0, "pseudo": False}
        bar = tqdm(range(state["step"], self.steps), desc=f"{type(self).__name__} seed {base.seed}", unit="step",
                   disable=not self.progress, leave=False)  # fmt: skip
        for step in bar:
            tick = time.perf_counter()
            network.train()
            rows_l = torch.randint(len(images_l), (self.labelled_batch,), generator=generator)
            rows_u = torch.randint(len(images_u), (n_unlabelled,), generator=generator)
            context.step = step
            out = self.train_step(context, Batch(images_l[rows_l], targets_l[rows_l], images_u[rows_u], rows_u))
            optimizer.zero_grad(set_to_none=True)
            out.loss.backward()
            optimizer.step()
            scheduler.step()
            average.update_parameters(network)

            window["loss"] += out.loss.item()
            window["seen"] += n_unlabelled
            if out.mask is not None:
                window["pseudo"] = True
                window["masked"] += int(out.mask.sum())
                if truth_u is not None:
                    window["correct"] += int(((out.pseudo == truth_u[rows_u]).float() * out.mask).sum())
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
        masked = window["masked"]
        record = {"step": step, "loss": window["loss"] / steps, "lr": self.lr * lr_factor("cosine", step, self.steps),
                  "mask_rate": masked / window["seen"] if window["pseudo"] else np.nan,
                  "pseudo_accuracy": window["correct"] / masked if has_truth and masked else np.nan,
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
