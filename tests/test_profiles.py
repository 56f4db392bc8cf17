"""Profiles: how big a run is, and the stratified subsets the smoke profile trains on."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from bloodssl import studies
from bloodssl.active.loop import VIEWS
from bloodssl.data import Split
from bloodssl.profiles import PROFILES, get_profile
from bloodssl.studies import initialisation


def split(name: str, per_class: int = 50, n_classes: int = 8) -> Split:
    labels = np.repeat(np.arange(n_classes), per_class)
    images = np.arange(len(labels), dtype=np.uint8).reshape(-1, 1, 1, 1).repeat(28, 1).repeat(28, 2).repeat(3, 3)
    return Split(name, images, labels)


def test_shrink_keeps_a_stratified_subset_of_the_profile_s_size():
    # break: take the first rows (one class), or ignore which split it is -> other counts
    smoke = get_profile("smoke")
    train, val = smoke.shrink(split("train"), seed=0), smoke.shrink(split("val"), seed=0)
    assert train.class_counts(8).tolist() == [smoke.train_per_class] * 8
    assert val.class_counts(8).tolist() == [smoke.eval_per_class] * 8


def test_shrink_takes_the_same_images_for_a_seed_and_others_for_another():
    smoke = get_profile("smoke")
    first, again, other = (smoke.shrink(split("train"), seed=s).images[:, 0, 0, 0] for s in (0, 0, 1))
    assert np.array_equal(first, again) and not np.array_equal(np.sort(first), np.sort(other))


def test_the_default_profile_keeps_every_image():
    whole = split("test")
    assert get_profile("default").shrink(whole) is whole


def test_seeds_start_at_the_first_one_and_an_unknown_profile_lists_the_choices():
    assert get_profile("default").seeds(4) == [4, 5] and get_profile("smoke").seeds() == [0]
    assert set(PROFILES) == {"smoke", "default", "full"}
    with pytest.raises(ValueError, match="unknown profile 'tiny'; choose one of smoke, default, full"):
        get_profile("tiny")


def test_every_notebook_has_one_plan_per_profile_and_unknown_names_are_refused():
    for notebook in studies.MODULES:
        plans = [studies.plan(notebook, profile) for profile in PROFILES]
        assert all(type(plan) is type(plans[0]) and dataclasses.is_dataclass(plan) for plan in plans), notebook
        assert dataclasses.asdict(plans[0])  # what the notebook writes beside its results
    with pytest.raises(ValueError, match="unknown profile 'huge'; choose one of smoke, default, full"):
        studies.plan("04_pseudo_labelling", "huge")
    with pytest.raises(ValueError, match="no study for notebook '09_x'; choose one of 01_data_and_baseline"):
        studies.plan("09_x", "default")


def test_plans_grow_with_the_profile_and_notebook_03_shares_notebook_02_s_encoders():
    # break: give notebook 03 other SimCLR epochs or CNN settings -> it trains its own encoders, not 02's cached ones
    embeddings = [studies.plan("02_embeddings_and_clustering", p) for p in ("smoke", "default", "full")]
    assert embeddings[0].simclr_epochs < embeddings[1].simclr_epochs < embeddings[2].simclr_epochs
    for profile in PROFILES:
        two = studies.plan("02_embeddings_and_clustering", profile)
        three = studies.plan("03_label_propagation", profile)
        assert (three.simclr_epochs, three.cnn, three.n_components) == (two.simclr_epochs, two.cnn, two.n_components)
        assert studies.plan("01_data_and_baseline", profile).cnn["epochs"] == PROFILES[profile].epochs


def test_notebook_06_shares_the_cnn_recipe_and_encoder_of_notebooks_01_to_03():
    # break: give notebook 06 other CNN settings or SimCLR epochs -> it retrains what 01-03 trained, minutes a run
    for profile in ("default", "full"):
        six, two = studies.plan("06_label_efficiency", profile), studies.plan("02_embeddings_and_clustering", profile)
        assert six.cnn == two.cnn == studies.plan("01_data_and_baseline", profile).cnn
        assert six.simclr_epochs == two.simclr_epochs


def test_notebook_06_distils_on_chosen_labels_only_where_the_label_choices_ran():
    # break: a choice fraction that is not a selection fraction -> distillation trains the chosen labels' CNN itself
    for profile in PROFILES:
        plan = studies.plan("06_label_efficiency", profile)
        assert set(plan.distillation_choice_fractions) <= set(plan.selection_fractions), profile
        assert set(plan.distillation_choice_fractions) <= set(plan.distillation_fractions), profile


def test_notebook_06_trains_longer_only_where_the_curve_runs_and_for_more_epochs():
    # break: a long fraction off the curve, or no more epochs -> the levers table has no plain run to compare with,
    # or the "longer" schedule is the recipe's own
    for profile in PROFILES:
        plan = studies.plan("06_label_efficiency", profile)
        for schedule in plan.long_schedules:
            assert set(schedule.fractions) <= set(plan.fractions) and schedule.epochs > plan.cnn["epochs"], profile
            # break: a long fraction without the starts -> FixMatch from the longer schedule skips it without a word
            starts = initialisation.PLANS[profile].fractions
            assert not schedule.fixmatch_steps or set(schedule.fractions) <= set(starts), profile
    # break: drop FixMatch's steps from the default's schedules -> its levers table loses its largest lever at 1 %
    assert any(schedule.fixmatch_steps for schedule in studies.plan("06_label_efficiency", "default").long_schedules)


def test_every_plan_of_notebook_05_predicts_the_pool_with_the_views_its_strategies_need():
    # break: BALD in a plan whose pool is predicted with one view -> the notebook fails after its main study
    for profile in PROFILES:
        plan = studies.plan("05_ssl_active_learning", profile)
        views = VIEWS[plan.pool_views or plan.learner.get("tta", "dihedral")]
        if "bald" in (plan.strategy, *plan.strategies):
            assert len(views) > 1, f"{profile}: bald needs several views of the pool; it gets {len(views)}"


def test_notebook_06_starts_where_its_curve_runs_and_full_has_the_issue_s_three_seeds():
    # break: a start fraction off the curve -> FixMatch from random weights trains its own round 0 and the levers
    # table has no plain run to compare the starts with
    for profile in PROFILES:
        curve = studies.plan("06_label_efficiency", profile).fractions
        assert set(initialisation.PLANS[profile].fractions) <= set(curve), profile
    # break: run the profile's 5 seeds at full, or fewer than 3 -> past its budget, or not the issue's mean of 3 seeds
    assert studies.plan("06_label_efficiency", "full").seeds(4, PROFILES["full"].n_seeds) == [4, 5, 6]
    # break: ignore the profile where the plan names no seeds -> the default notebook's seeds differ from the others'
    assert studies.plan("06_label_efficiency", "default").seeds(0, PROFILES["default"].n_seeds) == [0, 1]
