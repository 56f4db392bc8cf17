"""Test-time augmentation views and a cache of a network's predictions."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable

import numpy as np

from bloodssl.core.hashing import fingerprint, weights_fingerprint

TTA_MODES = {"none": [(0, False)], "dihedral": [(k, f) for f in (False, True) for k in range(4)]}


class Memo:
    """The latest ``size`` results of a computation by key (least recently used dropped first):
    the predictions of a network that several runs of a sweep share are computed once."""

    def __init__(self, size: int = 16):
        self.size = size
        self._results: OrderedDict[str, object] = OrderedDict()

    def get(self, key: str, compute: Callable[[], object]):
        """The result stored under ``key``, computed by ``compute()`` the first time."""
        if key not in self._results:
            self._results[key] = compute()
            while len(self._results) > self.size:
                self._results.popitem(last=False)
        self._results.move_to_end(key)
        return self._results[key]


PROBA_MEMO = Memo(16)


def cached_proba(model, X: np.ndarray) -> np.ndarray:
    """``model.predict_proba(X)``, remembered for the same weights and images.

    Every method of a sweep starts from the same round-0 network, so its TTA predictions on
    the unlabelled, validation and test images are computed once, not once per method.
    """
    key = fingerprint(np.asarray(X)) + weights_fingerprint(model.model_) + model.tta
    return PROBA_MEMO.get(key, lambda: model.predict_proba(X))
