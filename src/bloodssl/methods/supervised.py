"""Supervised training of the CNNs behind a scikit-learn estimator.

``CNNClassifier().fit(X, y, eval_set=(X_val, y_val))`` trains on the images whose label
is not -1, keeps the weights of the epoch with the best validation accuracy (the test
split is never looked at), checkpoints every epoch and resumes from the checkpoint when
rerun, so an interrupted notebook loses at most one epoch and a finished one costs nothing.
"""

from __future__ import annotations

import copy
import os
import time

import numpy as np
import torch
import torch.nn.functional as F
from sklearn.base import BaseEstimator, ClassifierMixin
from torch.utils.data import BatchSampler, DataLoader, RandomSampler, TensorDataset
from tqdm.auto import tqdm

from bloodssl.core.checkpoints import load_checkpoint, restore_training, save_checkpoint, training_state
from bloodssl.core.hashing import fingerprint, signature, weights_fingerprint
from bloodssl.core.losses import class_weights
from bloodssl.core.prediction import TTA_MODES
from bloodssl.core.schedules import SCHEDULES, lr_factor, set_threads
from bloodssl.core.validation import as_images, as_labels, check_fitted, infer_n_classes, warn_missing_classes
from bloodssl.data import to_tensor
from bloodssl.data.augment import dihedral
from bloodssl.data.recipes import RECIPES, TrainingAugment
from bloodssl.methods.registry import register
from bloodssl.models import build_model
from bloodssl.models.base import load_backbone


@register("supervised")
class CNNClassifier(ClassifierMixin, BaseEstimator):
    """A CNN from ``bloodssl.models`` trained with batched augmentation.

    Parameters follow scikit-learn's convention (stored as given, validated in ``fit``).
    ``class_weight='balanced'`` weights the cross-entropy by inverse class frequency of
    the labelled images. ``min_epoch_samples`` lets an epoch of a tiny labelled set draw
    several shuffled passes, so a 1 % subset still gets enough optimiser steps.
    ``tta='dihedral'`` averages predictions over the eight flips/rotations. ``augment`` is the
    training augmentation: True is notebook 01's (``data.recipes``' ``cell``), False none, a
    name of ``data.recipes.RECIPES`` another (RandAugment, AugMix, MixUp, ...).
    ``warm_start=True`` makes a second ``fit`` start from the current weights (and keep
    their normalisation statistics) instead of a fresh network, as in scikit-learn; a
    self-training round can then fine-tune for a few epochs instead of retraining.
    ``init_from`` is a checkpoint of the same model (e.g. notebook 02's SimCLR encoder) whose
    backbone a fresh network starts from instead of random weights.
    """

    def __init__(
        self,
        model: str = "cnn",
        epochs: int = 30,
        batch_size: int = 128,
        lr: float = 0.1,
        momentum: float = 0.9,
        weight_decay: float = 5e-4,
        label_smoothing: float = 0.1,
        class_weight: str | None = None,
        schedule: str = "onecycle",
        augment: bool | str = True,
        min_epoch_samples: int = 0,
        tta: str = "dihedral",
        warm_start: bool = False,
        init_from: str | os.PathLike | None = None,
        seed: int = 0,
        checkpoint: str | os.PathLike | None = None,
        num_threads: int | None = None,
        progress: bool = True,
        n_classes: int | None = None,
    ):
        self.model = model
        self.epochs = epochs
        self.batch_size = batch_size
        self.lr = lr
        self.momentum = momentum
        self.weight_decay = weight_decay
        self.label_smoothing = label_smoothing
        self.class_weight = class_weight
        self.schedule = schedule
        self.augment = augment
        self.min_epoch_samples = min_epoch_samples
        self.tta = tta
        self.warm_start = warm_start
        self.init_from = init_from
        self.seed = seed
        self.checkpoint = checkpoint
        self.num_threads = num_threads
        self.progress = progress
        self.n_classes = n_classes

    # -- fitting ---------------------------------------------------------------------------

    def _validate_params(self) -> None:
        if self.schedule not in SCHEDULES:
            raise ValueError(f"unknown schedule {self.schedule!r}; choose one of {', '.join(SCHEDULES)}")
        if self.tta not in TTA_MODES:
            raise ValueError(f"unknown tta {self.tta!r}; choose one of {', '.join(TTA_MODES)}")
        if not isinstance(self.augment, bool) and self.augment not in RECIPES:
            raise ValueError(f"augment must be True, False or one of {', '.join(RECIPES)}; got {self.augment!r}")
        if self.class_weight not in (None, "balanced"):
            raise ValueError(f"class_weight must be None or 'balanced', got {self.class_weight!r}")
        if self.epochs < 1 or self.batch_size < 1:
            raise ValueError(f"epochs and batch_size must be positive, got {self.epochs}, {self.batch_size}")

    def _signature(self, images: np.ndarray, labels: np.ndarray, eval_set) -> str:
        skip = {"checkpoint", "num_threads", "progress", "tta", "init_from"}
        params = {k: v for k, v in self.get_params().items() if k not in skip}
        # the classes the network has, not how they were given: None (inferred from the labels) and the count it
        # infers train the same network, so a semi-supervised method's round 0 reuses a plain CNN's checkpoint
        params["n_classes"] = self.n_classes_
        data = fingerprint(images, labels, *(eval_set or ()))
        if self.init_from is not None or self.warm_start:  # the weights it starts from, not where they were read
            data += weights_fingerprint(self.model_)
        return signature(params, data)

    def fit(self, X, y, eval_set: tuple | None = None) -> CNNClassifier:
        """Train on the images of ``X`` whose label in ``y`` is not -1.

        ``eval_set=(X_val, y_val)`` selects the epoch with the best validation accuracy;
        without it the last epoch is kept.
        """
        self._validate_params()
        X = as_images(X)
        y = as_labels(y, len(X), self.n_classes)
        labelled = y >= 0
        if not labelled.any():
            raise ValueError("y has no labelled image (every label is -1); label at least one per class")
        if eval_set is not None:
            eval_set = (as_images(eval_set[0]), as_labels(eval_set[1], len(eval_set[0]), self.n_classes))
        set_threads(self.num_threads)
        torch.manual_seed(self.seed)
        generator = torch.Generator().manual_seed(self.seed)

        warm = self.warm_start and hasattr(self, "model_")
        self.n_classes_ = self.n_classes_ if warm else infer_n_classes(self.n_classes, y, *(eval_set or ())[1:])
        if y.max() >= self.n_classes_:
            raise ValueError(f"y holds class {y.max()} but the network of the warm start has {self.n_classes_} classes")
        warn_missing_classes(y, self.n_classes_)
        self.classes_ = np.arange(self.n_classes_)
        if not (self.warm_start and hasattr(self, "model_")):
            pixels = X.reshape(-1, X.shape[-1]) / 255.0
            mean, std = pixels.mean(0).tolist(), (pixels.std(0) + 1e-6).tolist()
            self.model_ = build_model(self.model, self.n_classes_, mean, std).to(memory_format=torch.channels_last)
            if self.init_from is not None:
                load_backbone(self.model_, self.init_from)

        images, targets = to_tensor(X[labelled]), torch.from_numpy(y[labelled])
        weight = class_weights(targets, self.n_classes_, self.class_weight)
        dataset = TensorDataset(images, targets)
        n_samples = max(len(dataset), self.min_epoch_samples)
        sampler = RandomSampler(dataset, num_samples=n_samples, generator=generator)
        batches = BatchSampler(sampler, min(self.batch_size, len(dataset)), drop_last=len(dataset) > self.batch_size)
        loader = DataLoader(dataset, sampler=batches, batch_size=None)
        steps = len(batches) * self.epochs

        optimizer = torch.optim.SGD(
            self.model_.parameters(), lr=self.lr, momentum=self.momentum,
            weight_decay=self.weight_decay, nesterov=True,
        )  # fmt: skip
        scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: lr_factor(self.schedule, step, steps))
        recipe = {True: "cell", False: "none"}.get(self.augment, self.augment)
        augment = TrainingAugment(recipe, self.n_classes_) if recipe != "none" else None

        key = self._signature(X[labelled], y[labelled], eval_set)
        state = load_checkpoint(self.checkpoint, key)
        if state is None:
            state = {"signature": key, "epoch": 0, "history": [], "best_score": -1.0,
                     "best_epoch": 0, "best_model": None, "seconds": 0.0}  # fmt: skip
        else:
            restore_training(state, self.model_, optimizer, scheduler, generator)

        bar = tqdm(range(state["epoch"], self.epochs), desc=f"{self.model} seed {self.seed}",
                   unit="epoch", disable=not self.progress, leave=False)  # fmt: skip
        for epoch in bar:
            start = time.perf_counter()
            loss = self._train_epoch(loader, optimizer, scheduler, augment, weight, generator)
            train_seconds = time.perf_counter() - start
            record = {"epoch": epoch + 1, "loss": loss, "lr": scheduler.get_last_lr()[0],
                      "train_seconds": train_seconds, "images_per_second": n_samples / train_seconds}  # fmt: skip
            score = 0.0
            if eval_set is not None:
                score = float((self.predict_proba_tta(eval_set[0], "none").argmax(1) == eval_set[1]).mean())
                record["val_accuracy"] = score
            if score >= state["best_score"]:
                state["best_score"], state["best_epoch"] = score, epoch + 1
                state["best_model"] = copy.deepcopy(self.model_.state_dict())
            state["seconds"] += time.perf_counter() - start
            state["history"].append(record)
            state.update(epoch=epoch + 1, **training_state(self.model_, optimizer, scheduler, generator))
            save_checkpoint(self.checkpoint, state)
            bar.set_postfix(loss=f"{loss:.3f}", val=f"{record.get('val_accuracy', float('nan')):.4f}",
                            img_s=f"{record['images_per_second']:.0f}")  # fmt: skip

        self.model_.load_state_dict(state["best_model"])
        self.model_.eval()
        self.history_ = state["history"]
        self.best_epoch_ = state["best_epoch"]
        self.fit_seconds_ = state["seconds"]
        self.train_images_per_second_ = float(np.mean([r["images_per_second"] for r in self.history_]))
        self.n_labels_ = int(labelled.sum())
        return self

    def _train_epoch(self, loader, optimizer, scheduler, augment, weight, generator) -> float:
        self.model_.train()
        total, batches = 0.0, 0
        for images, targets in loader:
            if augment is not None:
                images, targets = augment(images, targets, generator)  # MixUp and CutMix make targets soft
            logits = self.model_(images.contiguous(memory_format=torch.channels_last))
            loss = F.cross_entropy(logits, targets, weight=weight, label_smoothing=self.label_smoothing)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            scheduler.step()
            total += loss.item()
            batches += 1
        return total / max(batches, 1)

    # -- prediction ------------------------------------------------------------------------

    def _batches(self, X, batch_size: int = 1024):
        X = as_images(X)
        for start in range(0, len(X), batch_size):
            yield to_tensor(X[start : start + batch_size]).contiguous(memory_format=torch.channels_last)

    @torch.inference_mode()
    def predict_proba_tta(self, X, tta: str) -> np.ndarray:
        """Class probabilities averaged over the views of ``tta`` (a key of ``TTA_MODES``)."""
        check_fitted(self, "model_")
        self.model_.eval()
        views = TTA_MODES[tta]
        out = []
        for images in self._batches(X):
            probs = sum(F.softmax(self.model_(dihedral(images, k, f)), 1) for k, f in views) / len(views)
            out.append(probs)
        return torch.cat(out).numpy() if out else np.zeros((0, self.n_classes_), np.float32)

    def predict_proba(self, X) -> np.ndarray:
        """Class probabilities, averaged over the ``tta`` views."""
        return self.predict_proba_tta(X, self.tta)

    def predict(self, X) -> np.ndarray:
        return self.predict_proba(X).argmax(1)

    @torch.inference_mode()
    def transform(self, X) -> np.ndarray:
        """Penultimate embeddings, shape (N, embedding_dim)."""
        check_fitted(self, "model_")
        self.model_.eval()
        feats = [self.model_.features(images) for images in self._batches(X)]
        return torch.cat(feats).numpy()

    def throughput(self, X, repeats: int = 1) -> float:
        """Inference images/s of ``predict_proba`` (with its TTA views) on ``X``."""
        start = time.perf_counter()
        for _ in range(repeats):
            self.predict_proba(X)
        return repeats * len(X) / (time.perf_counter() - start)
