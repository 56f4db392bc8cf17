"""The learning methods, each a scikit-learn estimator (or transformer) in a module of its own.

Importing the package registers every classifier with ``bloodssl.methods.registry``, so
``get_method(name)`` knows them all.
"""

from bloodssl.methods import distillation, fixmatch, flexmatch, mean_teacher, propagation, self_training, supervised
from bloodssl.methods.registry import METHODS, get_method, register

__all__ = ["METHODS", "distillation", "fixmatch", "flexmatch", "get_method", "mean_teacher", "propagation", "register",
           "self_training", "supervised"]  # fmt: skip
