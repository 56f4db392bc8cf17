"""A trained classifier as one file a labelling job can load: the network's name, weights
and normalisation, the class names and the temperature that calibrates its probabilities
(fitted on validation labels), with a digest of the tensors so a damaged file is refused.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from bloodssl.core.calibration import fit_temperature
from bloodssl.core.checkpoints import state_digest
from bloodssl.core.hashing import weights_fingerprint
from bloodssl.core.io import atomic_path
from bloodssl.models import ImageClassifier, build_architecture


def bundle_digest(state: dict) -> str:
    """md5 of a saved bundle's tensors (``state_digest``) and of every other field (name,
    class names, temperature, normalisation), so that changing any of them is noticed."""
    fields = {key: value for key, value in state.items() if key not in ("weights", "digest")}
    return hashlib.md5((state_digest(state) + json.dumps(fields, sort_keys=True)).encode()).hexdigest()


@dataclass
class Bundle:
    """A network ready to label: ``model`` (eval mode), its registry name, the class names
    and the calibrating ``temperature`` (1 = the network's own probabilities)."""

    model: ImageClassifier
    model_name: str
    class_names: list[str]
    temperature: float = 1.0

    @classmethod
    def from_classifier(cls, classifier, class_names, val_images: np.ndarray, val_labels: np.ndarray) -> Bundle:
        """A fitted ``CNNClassifier`` with the temperature fitted on its validation
        probabilities without test-time augmentation (a labelling job predicts one view)."""
        proba = classifier.predict_proba_tta(val_images, "none")
        model = classifier.model_.eval()
        return cls(model, classifier.model, list(class_names), fit_temperature(proba, val_labels))

    @property
    def fingerprint(self) -> str:
        """md5 of the weights: equal fingerprint, equal predictions."""
        return weights_fingerprint(self.model)

    def save(self, path: str | os.PathLike) -> Path:
        """Write the bundle atomically (an interrupted save leaves the previous file)."""
        state = {"model_name": self.model_name, "class_names": self.class_names, "temperature": self.temperature,
                 "num_classes": len(self.class_names), "mean": self.model.mean.flatten().tolist(),
                 "std": self.model.std.flatten().tolist(), "weights": self.model.state_dict()}  # fmt: skip
        with atomic_path(path) as tmp:
            torch.save({**state, "digest": bundle_digest(state)}, tmp)
        return Path(path)

    @classmethod
    def load(cls, path: str | os.PathLike) -> Bundle:
        """The bundle saved at ``path``; a missing, unreadable or damaged file is named."""
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"{path} does not exist; save a trained classifier with Bundle.save first")
        try:
            state = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as error:  # noqa: BLE001 - torch raises several kinds for a damaged file
            kind = type(error).__name__
            raise ValueError(f"{path} is not a readable model bundle ({kind}); save it again") from error
        if not isinstance(state, dict) or state.get("digest") != bundle_digest(state):
            raise ValueError(f"{path} does not match the digest it was saved with (its weights, class names or "
                             "temperature changed after it was saved); save it again")  # fmt: skip
        model = build_architecture(state["model_name"], state["num_classes"], state["mean"], state["std"])
        model.load_state_dict(state["weights"])
        return cls(model.eval(), state["model_name"], list(state["class_names"]), float(state["temperature"]))
