"""Notebook 06's pieces: the cold-start label choice, the curve gathered from other notebooks'
results with each point picked on validation, the anchors file and the pooled README targets."""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import pytest
import torch
from conftest import colour_coded

from bloodssl import paths, predictions, readme, results
from bloodssl.core.checkpoints import checkpoint_path
from bloodssl.data import Split
from bloodssl.data.splits import labelled_subset, mask_labels
from bloodssl.methods import embed
from bloodssl.methods.simclr import SimCLREncoder
from bloodssl.studies import distillation, initialisation
from bloodssl.studies import label_efficiency as study


def blobs(sizes=(400, 40, 40, 40, 40, 40, 40, 40), seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Eight well separated clusters, one ten times larger than the others (as BloodMNIST's
    classes are imbalanced): embeddings and their cluster labels."""
    rng = np.random.default_rng(seed)
    centres = 10 * np.eye(len(sizes))
    labels = np.repeat(np.arange(len(sizes)), sizes)
    return centres[labels] + rng.normal(size=(len(labels), len(sizes))), labels


def test_typiclust_labels_every_cluster_from_nothing_where_random_follows_the_imbalance():
    embeddings, labels = blobs()

    def covered(selection: str) -> list[int]:
        picks = [study.choose_labels(selection, 8, labels, embeddings, seed=s) for s in range(10)]
        assert all(len(np.unique(p)) == 8 for p in picks)
        return [len(set(labels[p])) for p in picks]

    # k-means from one start may split the big cluster once in a while: 8 of 8 clusters in most seeds
    assert np.mean(covered("typiclust")) >= 7.8
    # break: pick at random -> most of eight picks land in the big cluster (over half the images)
    assert np.mean(covered("random")) < 6


def test_stratified_labels_take_the_same_share_of_every_class():
    _, labels = blobs()
    chosen = study.choose_labels("stratified", 16, labels, None, seed=0)
    assert np.bincount(labels[chosen], minlength=8).tolist() == [9, 1, 1, 1, 1, 1, 1, 1]  # 16/720 of each class


@pytest.mark.parametrize("selection, budget, message", [("oracle", 8, "unknown selection"),
                                                        ("random", 0, "budget must be"),
                                                        ("random", 10_000, "budget must be")])  # fmt: skip
def test_a_bad_label_choice_is_refused_with_the_choices(selection, budget, message):
    embeddings, labels = blobs()
    with pytest.raises(ValueError, match=message):
        study.choose_labels(selection, budget, labels, embeddings, seed=0)


def test_typiclust_without_embeddings_says_what_it_needs():
    _, labels = blobs()
    with pytest.raises(ValueError, match="needs embeddings"):
        study.choose_labels("typiclust", 8, labels, None, seed=0)


def write(folder, stem: str, runs: dict, n_labels: int = 100, fraction: float = 0.01, params=None) -> None:
    """A results file of ``stem``: per method, its val and test accuracy over two seeds."""
    records = []
    for method, (val, test) in runs.items():
        for seed in (0, 1):
            keys = dict(method=method, model="cnn", label_fraction=fraction, n_labels=n_labels, seed=seed,
                        wall_seconds=60.0, profile="default", params=params)  # fmt: skip
            records += results.rows({"accuracy": val + seed / 100}, split="val", **keys)
            records += results.rows({"accuracy": test + seed / 100}, split="test", **keys)
    results.save(records, stem, results_dir=folder)


def test_the_curve_keeps_at_each_label_count_the_candidate_validation_picks(tmp_path):
    # FixMatch in 04 wins on test, its run in 05 on val: the curve must show 05's, whatever test says
    write(tmp_path, "04_pseudo_labelling", {"fixmatch": (0.80, 0.95), "supervised": (0.70, 0.70)})
    write(tmp_path, "05_ssl_active_learning", {"fixmatch": (0.90, 0.85), "al": (0.99, 0.99)})
    write(tmp_path, study.STEM, {"supervised": (0.99, 0.99)}, params={"labels": "typiclust"})  # another question
    points = study.curve(study.gather({"default": tmp_path}))
    accuracy = points.set_index("curve")
    assert set(accuracy.index) == {"FixMatch", "supervised CNN"}  # AL alone and the label choices are not lines
    assert accuracy.loc["FixMatch", "stem"] == "05_ssl_active_learning"
    assert accuracy.loc["FixMatch", "mean"] == pytest.approx(0.855) and accuracy.loc["FixMatch", "n"] == 2
    assert accuracy.loc["FixMatch", "minutes"] == pytest.approx(1.0)
    table = study.curve_table(points)
    assert table.columns.tolist() == ["source", "curve", "100 labels"]
    assert table.set_index("curve").loc["supervised CNN", "100 labels"] == "70.50 ± 0.71"


def test_gather_skips_notebooks_without_results(tmp_path):
    assert study.curve(study.gather({"default": tmp_path})).empty


def test_the_label_choice_table_puts_the_curve_runs_beside_the_chosen_labels_per_learner(tmp_path):
    write(tmp_path / "a", study.STEM, {"supervised": (0.8, 0.8), "distillation": (0.85, 0.85)})
    write(tmp_path / "b", study.STEM, {"supervised": (0.9, 0.9), "distillation": (0.95, 0.95)},
          params={"labels": "typiclust"})  # fmt: skip
    # at 5 % only the CNN has chosen labels: the student's stratified run there has nothing to stand beside
    write(tmp_path / "c", study.STEM, {"supervised": (0.5, 0.5), "distillation": (0.6, 0.6)}, fraction=0.05,
          n_labels=500)  # fmt: skip
    write(tmp_path / "d", study.STEM, {"supervised": (0.7, 0.7)}, fraction=0.05, n_labels=500,
          params={"labels": "random"})  # fmt: skip
    write(tmp_path / "e", study.STEM, {"transfer": (0.3, 0.3)})  # not a learner of the label choices
    write(tmp_path / "f", study.STEM, {"supervised": (0.2, 0.2)}, params={"start": "simclr"})  # nor another start
    write(tmp_path / "g", study.STEM, {"supervised": (0.1, 0.1)}, params={"epochs": 20})  # nor a longer schedule
    table = pd.concat([results.load(study.STEM, tmp_path / folder) for folder in "abcdefg"])
    chosen = study.selection_table(table).set_index(["n_labels", "learner", "labels"])["mean ± std (%)"]
    assert chosen.to_dict() == {
        (100, "supervised CNN", "stratified"): "80.50 ± 0.71",
        (100, "ensemble distillation", "stratified"): "85.50 ± 0.71",
        (100, "supervised CNN", "typiclust"): "90.50 ± 0.71",
        (100, "ensemble distillation", "typiclust"): "95.50 ± 0.71",
        (500, "supervised CNN", "stratified"): "50.50 ± 0.71", (500, "supervised CNN", "random"): "70.50 ± 0.71",
    }  # fmt: skip


def test_chosen_labels_are_the_curves_subset_or_as_many_chosen_images():
    embeddings, labels = blobs()
    stratified = study.chosen_labels("stratified", 0.02, labels, embeddings, seed=0)
    assert stratified.tolist() == labelled_subset(labels, fraction=0.02, seed=0).tolist()
    for selection in study.SELECTIONS[1:]:
        picked = study.chosen_labels(selection, 0.02, labels, embeddings, seed=0)
        assert len(picked) == len(stratified) and len(set(picked)) == len(picked)
        assert picked.tolist() == study.choose_labels(selection, len(stratified), labels, embeddings, 0).tolist()


def test_the_anchors_are_cited_and_within_range(tmp_path):
    anchors = study.anchors()
    assert anchors["reference"].str.len().gt(10).all() and anchors["accuracy"].between(50, 100).all()
    assert {"SPARSE", "MedMNIST v2", "MedMNIST+", "starting repository"} <= set(anchors["source"])
    assert set(anchors.loc[anchors["source"] == "SPARSE", "n_labels"]) == {40, 80, 160, 400}  # 5-50 per class
    anchors.drop(columns="reference").to_csv(tmp_path / "anchors.csv", index=False)
    with pytest.raises(ValueError, match="reference"):
        study.anchors(tmp_path / "anchors.csv")


def test_a_pooled_target_picks_across_notebooks_on_validation_within_its_labels(tmp_path):
    write(tmp_path, "04_pseudo_labelling", {"fixmatch": (0.80, 0.97)}, n_labels=119)
    write(tmp_path, "05_ssl_active_learning", {"ssl_al": (0.90, 0.93)}, n_labels=239)
    write(tmp_path, study.STEM, {"supervised": (0.75, 0.99)}, n_labels=119)  # best on test, not on val
    pooled = ("04_pseudo_labelling", "05_ssl_active_learning")
    targets = [readme.Target(study.STEM, "1 %", 0.92, None, pooled=pooled, max_labels=119),
               readme.Target(study.STEM, "2 %", 0.92, None, pooled=pooled, max_labels=241)]  # fmt: skip
    table = readme.target_table(tmp_path, targets)
    picked = ["fixmatch (cnn) in 04_pseudo_labelling, 119 labels", "ssl_al (cnn) in 05_ssl_active_learning, 239 labels"]
    assert table["method"].tolist() == picked
    assert table["met"].tolist() == ["yes", "yes"] and table["measured"].tolist()[1] == "93.50 ± 0.71"


def test_the_curve_reuses_the_few_label_cnn_that_notebooks_02_and_03_trained(tmp_path, monkeypatch):
    monkeypatch.setattr(paths, "MODELS", tmp_path)
    images, labels = colour_coded(16)
    splits = {name: Split(name, images, labels) for name in ("train", "val", "test")}
    params = {"epochs": 1, "min_epoch_samples": 64, "batch_size": 32}
    trained = embed.few_label_cnn(splits, fraction=0.25, seed=0, profile="smoke", **params)
    plan = dataclasses.replace(study.PLANS["smoke"], cnn=params, fractions=(0.25,), shots=(), transfer_fractions=(),
                               long_schedules=())  # fmt: skip
    (run,) = study.curve_runs(splits, plan, [0], profile="smoke", class_names=None)
    # break: checkpoint the curve's runs elsewhere -> it trains the same CNN again (minutes a run at default)
    assert run.classifier.fit_seconds_ == trained.fit_seconds_
    assert (run.fraction, run.params, run.classifier.n_labels_) == (0.25, {}, trained.n_labels_)


def test_the_longer_schedule_trains_the_recipe_again_for_its_epochs_on_the_same_labels(tmp_path, monkeypatch):
    monkeypatch.setattr(paths, "MODELS", tmp_path)
    images, labels = colour_coded(16)
    splits = {name: Split(name, images, labels) for name in ("train", "val", "test")}
    params = {"epochs": 1, "min_epoch_samples": 64, "batch_size": 32}
    longer = (study.LongSchedule(3, (0.25,)), study.LongSchedule(4, (0.25, 0.5)))
    plan = dataclasses.replace(study.PLANS["smoke"], cnn=params, fractions=(0.25, 0.5), shots=(), transfer_fractions=(),
                               long_schedules=longer)  # fmt: skip
    runs = study.curve_runs(splits, plan, [0], profile="smoke", class_names=None)
    assert [(r.fraction, r.params) for r in runs] == [
        (0.25, {}), (0.5, {}), (0.25, {"epochs": 3}), (0.25, {"epochs": 4}), (0.5, {"epochs": 4})]  # fmt: skip
    plain, long, longest = (runs[i].classifier for i in (0, 2, 3))
    # break: drop the epochs from the network -> the long run is the plain one
    assert [len(c.history_) for c in (plain, long, longest)] == [1, 3, 4] and long.n_labels_ == plain.n_labels_
    # break: checkpoint it as the plain run -> it overwrites the CNN that notebooks 02, 03 and distillation reuse
    assert torch.load(study.recipe_checkpoint("cnn", 0.25, 0, "smoke"), weights_only=True)["epoch"] == 1
    assert all(checkpoint_path(study.STEM, f"epochs{e}", "cnn", 0.25, 0, "smoke").is_file() for e in (3, 4))
    table = results.frame(row for r in runs for row in r.rows("smoke"))
    assert sorted(study.levers(table, [0.25])["lever"]) == ["supervised", "supervised (epochs=3)",
                                                            "supervised (epochs=4)"]  # fmt: skip
    # break: let two schedules of one length through -> at a shared fraction one CNN, two FixMatch runs in one folder
    with pytest.raises(ValueError, match=r"repeat the epochs \[3\]: merge"):
        dataclasses.replace(plan, long_schedules=(*longer, study.LongSchedule(3, (0.25,), fixmatch_steps=5)))


def test_a_notebook_run_reads_the_others_published_results_beside_its_own_staged_ones(tmp_path, monkeypatch):
    # break: read the other notebooks from paths.RESULTS -> under `make reports` (a staging folder) the curve
    # holds notebook 06's own runs only
    published, staged = tmp_path / "reports", tmp_path / "staging"
    write(published / "results", "04_pseudo_labelling", {"fixmatch": (0.8, 0.8)})
    write(published / "full" / "results", "04_pseudo_labelling", {"fixmatch": (0.9, 0.9)})
    write(staged, study.STEM, {"supervised": (0.7, 0.7)})
    monkeypatch.setenv(paths.PUBLISHED_ENV, str(published))
    monkeypatch.setattr(paths, "RESULTS", staged)
    points = study.curve(study.gather_for("default", "bloodmnist"))
    found = {(row.source, row.curve, round(row.mean, 3)) for row in points.itertuples()}
    assert found == {("default", "FixMatch", 0.805), ("full", "FixMatch", 0.905), ("default", "supervised CNN", 0.705)}


def test_a_pooled_target_compares_runs_at_one_number_of_labels_and_skips_those_without_test_rows(tmp_path):
    # break: merge a method's runs at 119 and 241 labels into one candidate -> it wins on its seed count (4), not on
    # validation, and its "measured" mixes two label counts
    write(tmp_path, study.STEM, {"supervised": (0.70, 0.70)}, n_labels=119)
    write(tmp_path / "more", study.STEM, {"supervised": (0.72, 0.72)}, fraction=0.02, n_labels=241)
    write(tmp_path, "05_ssl_active_learning", {"ssl_al": (0.90, 0.91)}, n_labels=239)
    both = pd.concat([results.load(study.STEM, tmp_path), results.load(study.STEM, tmp_path / "more")])
    results.save(both, study.STEM, results_dir=tmp_path)
    val_only = results.load("05_ssl_active_learning", tmp_path)
    val_only = val_only[val_only["split"] == "val"].assign(method="al", value=0.99)  # best on val, never tested
    results.save(pd.concat([results.load("05_ssl_active_learning", tmp_path), val_only]), "05_ssl_active_learning",
                 results_dir=tmp_path)  # fmt: skip
    target = readme.Target(study.STEM, "2 %", 0.95, None, pooled=("05_ssl_active_learning",), max_labels=241)
    (row,) = readme.target_table(tmp_path, [target]).to_dict("records")
    assert row["method"] == "ssl_al (cnn) in 05_ssl_active_learning, 239 labels"
    assert (row["seeds"], row["measured"], row["met"]) == (2, "91.50 ± 0.71", "no")


def test_an_empty_curve_still_has_its_columns():
    points = study.curve(study.gather({}))
    assert list(points.columns) == study.POINT_COLUMNS and study.curve_table(points).empty


def test_distillation_starts_from_the_curves_cnn_and_counts_every_networks_cost(tmp_path, monkeypatch):
    monkeypatch.setattr(paths, "MODELS", tmp_path)
    images, labels = colour_coded(16)
    splits = {name: Split(name, images, labels) for name in ("train", "val", "test")}
    params = {"epochs": 1, "min_epoch_samples": 64, "batch_size": 32}
    plan = dataclasses.replace(study.PLANS["smoke"], cnn=params, fractions=(0.25,), shots=(), transfer_fractions=(),
                               distillation_fractions=(0.25,), distillation_selections=("stratified",),
                               long_schedules=())  # fmt: skip
    (curve_run,) = study.curve_runs(splits, plan, [0], profile="smoke", class_names=None)
    shared = study.recipe_checkpoint("cnn", 0.25, 0, "smoke")
    written = shared.stat().st_mtime_ns
    (run,) = distillation.runs(splits, plan, [0], None, profile="smoke", class_names=None)
    method_rows = results.frame(run.rows("smoke"))
    # break: train round 0 again instead of reusing the curve's CNN (elsewhere, or under another signature, as when
    # the engine's class count made it one) -> a checkpoint beside the teachers', or the curve's written again
    folder = checkpoint_path(study.STEM, "distillation", "cnn", 0.25, 0, "smoke").with_suffix("")
    assert {p.name for p in folder.iterdir()} == {"teacher1.pt", "soft_labels.pt", "distillation.pt"}
    assert shared.stat().st_mtime_ns == written
    # break: leave the teachers out of the cost -> it is round 0's and the student's alone
    assert run.wall_seconds > curve_run.classifier.fit_seconds_ + run.classifier.fit_seconds_
    assert set(method_rows["wall_seconds"]) == {run.wall_seconds}
    assert run.params == {"teachers": 2, "steps": 10} and run.classifier.n_labels_ == curve_run.classifier.n_labels_
    train_rows = method_rows[method_rows["split"] == "train"].set_index("metric")["value"]
    assert set(train_rows.index) == {"train_images_per_second", "best_step", "pseudo_accuracy"}
    assert train_rows["best_step"] in (5, 10)


def test_distillation_on_chosen_labels_starts_from_the_label_choices_cnn_on_the_same_labels(tmp_path, monkeypatch):
    monkeypatch.setattr(paths, "MODELS", tmp_path)
    images, labels = colour_coded(16)
    splits = {name: Split(name, images, labels) for name in ("train", "val", "test")}
    embeddings = images.reshape(len(images), -1)[:, ::97].astype(float)
    params = {"epochs": 1, "min_epoch_samples": 64, "batch_size": 32}
    plan = dataclasses.replace(study.PLANS["smoke"], cnn=params, selection_fractions=(0.25,),
                               distillation_fractions=(0.25,), distillation_selections=("random",))  # fmt: skip
    random_labels = study.chosen_labels("random", 0.25, labels, None, seed=0)
    assert random_labels.tolist() != labelled_subset(labels, fraction=0.25, seed=0).tolist()
    study.selection_runs(splits, plan, [0], embeddings, profile="smoke", class_names=None)
    first = study.selection_checkpoint("random", "cnn", 0.25, 0, "smoke")
    written = first.stat().st_mtime_ns
    given = []
    monkeypatch.setattr(distillation, "mask_labels",
                        lambda y, labelled: given.append(labelled) or mask_labels(y, labelled))  # fmt: skip
    (run,) = distillation.runs(splits, plan, [0], None, profile="smoke", class_names=None)
    # break: start from the curve's CNN on stratified labels, or train a new round 0 -> that checkpoint exists, or
    # the random-labels CNN's is written again
    assert not study.recipe_checkpoint("cnn", 0.25, 0, "smoke").exists()
    assert first.stat().st_mtime_ns == written
    # break: give the ensemble the stratified labels -> other indices
    assert [g.tolist() for g in given] == [random_labels.tolist()]
    assert run.params == {"teachers": 2, "steps": 10, "labels": "random"} and run.fraction == 0.25
    folder = checkpoint_path(study.STEM, "distillation-random-labels", "cnn", 0.25, 0, "smoke").with_suffix("")
    assert {p.name for p in folder.iterdir()} == {"teacher1.pt", "soft_labels.pt", "distillation.pt"}


def test_distillation_on_typiclust_labels_without_embeddings_fails_before_anything_trains(tmp_path, monkeypatch):
    monkeypatch.setattr(paths, "MODELS", tmp_path)
    images, labels = colour_coded(4)
    splits = {name: Split(name, images, labels) for name in ("train", "val", "test")}
    plan = dataclasses.replace(study.PLANS["smoke"], selection_fractions=(), distillation_fractions=(0.25,))
    assert plan.distillation_selections == study.SELECTIONS  # the stratified run comes first
    assert plan.distillation_choice_fractions == (0.25,)  # not the selection fractions: they decide nothing here
    with pytest.raises(ValueError, match="embeddings"):
        distillation.runs(splits, plan, [0], None, profile="smoke", class_names=None)
    assert not any(tmp_path.iterdir())


def test_distillation_on_chosen_labels_runs_only_at_the_choice_fractions(tmp_path, monkeypatch):
    # break: distil on chosen labels at every distillation fraction -> TypiClust asks for the embeddings here too
    monkeypatch.setattr(paths, "MODELS", tmp_path)
    images, labels = colour_coded(4)
    splits = {name: Split(name, images, labels) for name in ("train", "val", "test")}
    plan = dataclasses.replace(study.PLANS["smoke"], cnn={"epochs": 1, "min_epoch_samples": 32, "batch_size": 16},
                               distillation_fractions=(0.25,), distillation_choice_fractions=())  # fmt: skip
    (run,) = distillation.runs(splits, plan, [0], None, profile="smoke", class_names=None)
    assert "labels" not in run.params


def test_the_levers_table_puts_each_run_beside_the_cnn_on_stratified_labels(tmp_path):
    write(tmp_path, study.STEM, {"supervised": (0.8, 0.8)})
    write(tmp_path / "x", study.STEM, {"supervised": (0.9, 0.9)}, params={"labels": "typiclust"})
    write(tmp_path / "y", study.STEM, {"distillation": (0.85, 0.85)}, params={"teachers": 3})
    write(tmp_path / "z", study.STEM, {"supervised": (0.5, 0.5)}, fraction=0.05, n_labels=500)  # another fraction
    write(tmp_path / "s", study.STEM, {"fixmatch": (0.83, 0.83)}, params={"start": "simclr"})
    write(tmp_path / "t", study.STEM, {"transfer": (0.99, 0.99)})  # not a lever of few labels
    table = pd.concat([results.load(study.STEM, folder) for folder in tmp_path.glob("**/")])
    levers = study.levers(table, [0.01]).set_index("lever")
    assert list(levers.index) == ["supervised", "fixmatch (start=simclr)", "distillation (teachers=3)",
                                  "supervised (labels=typiclust)"]  # fmt: skip
    assert levers["change (points)"].tolist() == [0.0, 3.0, 5.0, 10.0] and set(levers["minutes"]) == {1.0}
    assert levers.loc["distillation (teachers=3)", "test accuracy (%)"] == "85.50 ± 0.71"


def test_the_full_plan_runs_no_label_choice_or_distillation_and_needs_no_embeddings(tmp_path, monkeypatch):
    # break: give full label choices or distillation, or ask for the embeddings its notebook no longer computes ->
    # they train (files under MODELS) or fail without embeddings
    monkeypatch.setattr(paths, "MODELS", tmp_path)
    images, labels = colour_coded(4)
    splits = {name: Split(name, images, labels) for name in ("train", "val", "test")}
    plan = study.PLANS["full"]
    assert study.selection_runs(splits, plan, [0], None, profile="full", class_names=None) == []
    assert distillation.runs(splits, plan, [0], None, profile="full", class_names=None) == []
    assert not list(tmp_path.iterdir())


def test_the_probe_scores_the_encoder_beside_the_curves_own_cnn_on_the_curves_labels(tmp_path, monkeypatch):
    # break: probe another CNN than the curve's, other labels, or one embedding only -> the asserts below fail
    monkeypatch.setattr(paths, "MODELS", tmp_path)
    monkeypatch.setenv(embed.ENV, str(tmp_path / "embeddings"))
    images, labels = colour_coded(4)
    splits = {name: Split(name, images, labels) for name in ("train", "val", "test")}
    params = {"epochs": 1, "min_epoch_samples": 64, "batch_size": 32}
    starts = initialisation.PLANS["smoke"]
    fraction = starts.probe_fractions[0]
    plan = dataclasses.replace(study.PLANS["smoke"], cnn=params, fractions=(fraction,), shots=(), transfer_fractions=(),
                               long_schedules=())  # fmt: skip
    encoder = SimCLREncoder(epochs=1, batch_size=16, progress=False, num_threads=1, checkpoint=tmp_path / "encoder.pt")
    encoder.fit(images)
    names = [str(c) for c in range(8)]
    assert initialisation.probe(splits, plan, dataclasses.replace(starts, probe_fractions=()), [0], encoder,
                                profile="smoke", class_names=names) == ([], [])  # fmt: skip
    study.curve_runs(splits, plan, [0], profile="smoke", class_names=names)
    curve_cnn = study.recipe_checkpoint("cnn", fraction, 0, "smoke")
    written = curve_cnn.stat().st_mtime_ns
    rows, kept = initialisation.probe(splits, plan, starts, [0], encoder, profile="smoke", class_names=names)
    table = results.frame(rows)
    accuracy = table[table["metric"] == "accuracy"]
    assert set(zip(accuracy["model"], accuracy["split"], strict=True)) == {(m, s) for m in ("simclr", "cnn")
                                                                          for s in ("val", "test")}  # fmt: skip
    assert set(table["method"]) == {"labelled_only"} and set(table["label_fraction"]) == {fraction}
    assert set(table["n_labels"]) == {len(labelled_subset(labels, fraction=fraction, seed=0))}
    assert curve_cnn.stat().st_mtime_ns == written  # the CNN probed is the curve's, loaded, not trained again
    # break: keep no predictions, or another run's -> rescore cannot reproduce the probe's numbers
    assert predictions.rescore(table, kept)["same"].all()
    probed = initialisation.probe_table(table)
    assert sorted(probed["model"]) == ["cnn", "simclr"] and set(probed["n"]) == {1}


def test_the_self_supervised_start_runs_beside_fixmatch_from_the_curves_cnn(tmp_path, monkeypatch):
    # break: start the CNN from random weights too, or leave the encoder out of its cost -> the asserts below fail
    monkeypatch.setattr(paths, "MODELS", tmp_path)
    images, labels = colour_coded(4)
    splits = {name: Split(name, images, labels) for name in ("train", "val", "test")}
    starts = initialisation.PLANS["smoke"]
    fraction = starts.fractions[0]
    longer = (study.LongSchedule(3, (fraction,)), study.LongSchedule(4, (fraction,), fixmatch_steps=5))
    plan = dataclasses.replace(study.PLANS["smoke"], long_schedules=longer)
    fast = dict(epochs=1, batch_size=16, progress=False, num_threads=1)
    with pytest.raises(ValueError, match="train the encoder with the recipe's model"):
        initialisation.runs(splits, plan, starts, [0], SimCLREncoder(model="small_cnn", **fast), profile="smoke",
                            class_names=None)  # fmt: skip
    with pytest.raises(ValueError, match="no checkpoint to start the CNNs from"):
        initialisation.runs(splits, plan, starts, [0], SimCLREncoder(**fast), profile="smoke", class_names=None)
    encoder = SimCLREncoder(**fast, checkpoint=tmp_path / "encoder.pt").fit(images)
    study.curve_runs(splits, dataclasses.replace(plan, fractions=(), shots=(), transfer_fractions=()), [0],
                     profile="smoke", class_names=None)  # fmt: skip
    long_checkpoints = [study.long_checkpoint(schedule.epochs, "cnn", fraction, 0, "smoke") for schedule in longer]
    written = [path.stat().st_mtime_ns for path in long_checkpoints]
    runs = initialisation.runs(splits, plan, starts, [0], encoder, profile="smoke", class_names=None)
    steps = starts.fixmatch["steps"]
    # break: run FixMatch from a schedule without steps, or for notebook 04's steps -> it costs what nobody asked for
    assert [(r.method, r.params["start"], r.params.get("epochs"), r.params.get("steps")) for r in runs] == [
        ("fixmatch", "random", None, steps), ("supervised", "simclr", None, None), ("fixmatch", "simclr", None, steps),
        ("fixmatch", "random", 4, 5)]  # fmt: skip
    assert study.recipe_checkpoint("cnn", fraction, 0, "smoke").is_file()  # the random start is the curve's CNN
    # break: start the last FixMatch from the 3-epoch CNN or the recipe's, or round 0 from other parameters than the
    # curve's longer schedule -> the network is not of that schedule, or a checkpoint is trained again or overwritten
    assert runs[-1].classifier.epochs == 4 and [path.stat().st_mtime_ns for path in long_checkpoints] == written
    assert runs[-1].classifier.checkpoint == study.long_checkpoint(4, "cnn", fraction, 0, "smoke")
    assert torch.load(study.recipe_checkpoint("cnn", fraction, 0, "smoke"), weights_only=True)["epoch"] == 2
    # break: checkpoint both FixMatch runs from random weights in one folder -> each rerun trains the other again
    folders = [checkpoint_path(study.STEM, name, "cnn", fraction, 0, "smoke").with_suffix("") for name in
               ("fixmatch-random-start", "fixmatch-random-start-epochs4")]  # fmt: skip
    assert all((folder / "fixmatch.pt").is_file() for folder in folders)
    _, simclr_cnn, simclr_fixmatch, *_ = runs
    assert simclr_cnn.wall_seconds > encoder.fit_seconds_ and simclr_fixmatch.wall_seconds > simclr_cnn.wall_seconds
    # the SimCLR start began from the encoder's backbone: its round 0 is not the random start's
    first_layer = next(iter(encoder.model_.backbone.state_dict()))
    random_round0 = torch.load(study.recipe_checkpoint("cnn", fraction, 0, "smoke"), weights_only=True)["model"]
    simclr_round0 = torch.load(initialisation.start_checkpoint("simclr", "cnn", fraction, 0, "smoke"),
                               weights_only=True)["model"]  # fmt: skip
    assert not torch.equal(random_round0[f"backbone.{first_layer}"], simclr_round0[f"backbone.{first_layer}"])
