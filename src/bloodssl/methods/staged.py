"""What the semi-supervised CNN estimators share: one network per stage, one record per stage."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
from sklearn.base import clone

from bloodssl.core.prediction import cached_proba
from bloodssl.core.validation import as_images, as_labels, check_fitted, infer_n_classes
from bloodssl.methods.supervised import CNNClassifier


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
        X = as_images(X)
        y = as_labels(y, len(X), base.n_classes)
        if y_true is not None:
            y_true = as_labels(y_true, len(X), base.n_classes)
        # every stage's network gets the same classes, also those only the validation labels show
        base.set_params(n_classes=infer_n_classes(base.n_classes, y, *(eval_set or ())[1:]))
        if base.checkpoint is None and self.checkpoint_dir is not None:
            base.set_params(checkpoint=self._checkpoint("round0"))
        base.fit(X, y, eval_set=eval_set)
        self.classes_ = base.classes_
        self.estimators_, self.rounds_ = [base], []
        return base, X, y, y_true, self._log(base, "supervised", y, None, eval_set)

    def _check_estimator(self) -> None:
        if self.estimator is not None and not isinstance(self.estimator, CNNClassifier):
            raise ValueError(
                f"estimator must be a bloodssl.methods.supervised.CNNClassifier, got {type(self.estimator).__name__}; "
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
        check_fitted(self, "estimators_")
        return self.estimators_[-1].predict_proba(X)

    def predict(self, X) -> np.ndarray:
        return self.predict_proba(X).argmax(1)

    def staged_predict_proba(self, X) -> Iterator[np.ndarray]:
        """The probabilities of each round's network in turn (round 0 = supervised only)."""
        check_fitted(self, "estimators_")
        for model in self.estimators_:
            yield cached_proba(model, X)

    def transform(self, X) -> np.ndarray:
        """Penultimate embeddings of the last network."""
        check_fitted(self, "estimators_")
        return self.estimators_[-1].transform(X)
