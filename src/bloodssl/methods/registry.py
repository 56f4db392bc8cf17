"""The method registry: every classifier a notebook can name, by name.

``@register("fixmatch")`` on a class makes it ``get_method("fixmatch")``, as
``bloodssl.active.strategies`` does for query strategies; one contract test runs over
``METHODS`` (clone, parameters, fit, predicting before fit, pickling).
"""

from __future__ import annotations

from sklearn.base import BaseEstimator

METHODS: dict[str, type[BaseEstimator]] = {}


def register(name: str):
    """Class decorator: make an estimator available to ``get_method`` as ``name``."""

    def decorate(cls: type[BaseEstimator]) -> type[BaseEstimator]:
        if name in METHODS and METHODS[name] is not cls:
            raise ValueError(f"method name {name!r} is taken by {METHODS[name].__name__}; choose another")
        METHODS[name] = cls
        return cls

    return decorate


def get_method(name: str, **params) -> BaseEstimator:
    """The estimator registered as ``name``, built with ``params``; an unknown name lists the choices."""
    if name not in METHODS:
        raise ValueError(f"unknown method {name!r}; choose one of {', '.join(sorted(METHODS))}")
    return METHODS[name](**params)
