"""Test-time augmentation views and a cache of a network's predictions."""

from __future__ import annotations

from collections import OrderedDict

import numpy as np

from bloodssl.core.checkpoints import fingerprint

TTA_MODES = {"none": [(0, False)], "dihedral": [(k, f) for f in (False, True) for k in range(4)]}

_PROBA_CACHE: OrderedDict[str, np.ndarray] = OrderedDict()


def cached_proba(model, X: np.ndarray, size: int = 16) -> np.ndarray:
    """``model.predict_proba(X)``, remembered for the same weights and images.

    Every method of a sweep starts from the same round-0 network, so its TTA predictions on
    the unlabelled, validation and test images are computed once, not once per method.
    """
    weights = [t.numpy() for t in model.model_.state_dict().values() if t.is_floating_point()]
    key = fingerprint(np.asarray(X), *weights) + model.tta
    if key not in _PROBA_CACHE:
        _PROBA_CACHE[key] = model.predict_proba(X)
        while len(_PROBA_CACHE) > size:
            _PROBA_CACHE.popitem(last=False)
    _PROBA_CACHE.move_to_end(key)
    return _PROBA_CACHE[key]
