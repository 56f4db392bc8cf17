"""What each notebook runs: one module per notebook with its plan per profile (a frozen
dataclass in the module's ``PLANS``), its run harness and its result tables.

``plan(notebook, profile)`` is the one way a notebook gets its settings; it writes them
beside its results with ``dataclasses.asdict``.
"""

from __future__ import annotations

import importlib

from bloodssl.profiles import get_profile

#: the study module of each numbered notebook
MODULES = {
    "01_data_and_baseline": "baseline",
    "02_embeddings_and_clustering": "embeddings",
    "03_label_propagation": "label_propagation",
    "04_pseudo_labelling": "pseudo_labelling",
    "05_ssl_active_learning": "ssl_active_learning",
    "06_label_efficiency": "label_efficiency",
    "07_architectures_and_robustness": "architectures",
    "08_scaling_and_cost": "scaling",
}


def plan(notebook: str, profile: str):
    """The plan (a frozen dataclass) of ``notebook`` (its file stem) at ``profile``."""
    get_profile(profile)
    if notebook not in MODULES:
        raise ValueError(f"no study for notebook {notebook!r}; choose one of {', '.join(MODULES)}")
    plans = importlib.import_module(f"bloodssl.studies.{MODULES[notebook]}").PLANS
    if profile not in plans:
        raise ValueError(f"{notebook} has no plan for profile {profile!r}; define one of {', '.join(plans)}")
    return plans[profile]
