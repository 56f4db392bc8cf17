"""Every figure draws what its caption says: panels, lines, bars, labels and titles."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest
from matplotlib.collections import PathCollection
from matplotlib.patches import Rectangle

from bloodssl import paths, results
from bloodssl.data import SHORT_NAMES, Split
from bloodssl.studies.ssl_active_learning import ARM_NAMES, Plan
from bloodssl.viz import active, embedding, plots, pseudo, robustness

RNG = np.random.default_rng(0)


@pytest.fixture(autouse=True)
def close_figures():
    yield
    plt.close("all")


def bars(ax) -> list[Rectangle]:
    return [p for p in ax.patches if isinstance(p, Rectangle) and p.get_height() != 0 and p.get_width() != 0]


def texts(fig) -> str:
    return " | ".join(t.get_text() for ax in fig.axes for t in [ax.title, ax.xaxis.label, ax.yaxis.label])


# -- shared figures (notebook 01 and others) ------------------------------------------------


def test_save_writes_a_png_under_the_figures_folder():
    fig, _ = plt.subplots()
    plots.save(fig, "test_viz_demo")
    assert (paths.FIGURES / "test_viz_demo.png").read_bytes()[:4] == b"\x89PNG"


def test_class_distribution_and_histograms_count_each_class_of_each_split():
    splits = {"train": Split("train", np.zeros((6, 28, 28, 3), np.uint8), np.array([0, 0, 0, 1, 1, 2])),
              "test": Split("test", np.zeros((2, 28, 28, 3), np.uint8), np.array([2, 2]))}  # fmt: skip
    table = plots.class_distribution(splits, ["a", "b", "c"])
    assert table.query("split == 'train'")["count"].tolist() == [3, 2, 1]
    assert table.query("split == 'test'")["share"].tolist() == [0, 0, 1]
    fig = plots.label_histograms(splits, ["a", "b", "c"])
    left, right = fig.axes
    assert sorted(round(b.get_width()) for b in bars(left)) == [1, 2, 2, 3]  # zero counts draw no bar
    assert "count" in left.get_title() and "share" in right.get_title()


def test_example_grid_has_one_row_per_class_and_shows_grey_images_in_grey():
    images = np.repeat(np.arange(12, dtype=np.uint8)[:, None, None, None] * 20, 28, 1).repeat(28, 2)
    fig = plots.example_grid(Split("train", images, np.repeat([0, 1, 2], 4)), per_class=3, class_names=["x", "y", "z"])
    assert len(fig.axes) == 9 and sum(bool(ax.images) for ax in fig.axes) == 9
    assert fig.axes[0].images[0].get_cmap().name == "gray"
    assert {t.get_text() for ax in fig.axes for t in ax.texts} == {"x", "y", "z"}


def test_confusion_writes_counts_and_colours_row_shares():
    matrix = np.array([[3, 1], [0, 4]])
    fig = plots.confusion(matrix, title="demo", class_names=["a", "b"])
    ax = fig.axes[0]
    assert [t.get_text() for t in ax.texts] == ["3", "1", "0", "4"]
    assert [t.get_text() for t in ax.get_xticklabels()] == ["a", "b"] and ax.get_title() == "demo"
    assert np.allclose(ax.collections[0].get_array().reshape(2, 2), [[0.75, 0.25], [0, 1]])


def test_per_class_scores_and_training_curves_draw_each_score_and_run():
    per_class = pd.DataFrame({"class": ["a", "b"] * 2, "precision": [0.9, 0.8, 0.7, 0.6], "recall": 0.5, "f1": 0.6})
    fig = plots.per_class_scores(per_class)
    assert len(bars(fig.axes[0])) == 2 * 3  # two classes, three scores
    histories = {"seed 0": [{"epoch": 1, "loss": 2.0, "val_accuracy": 0.5}, {"epoch": 2, "loss": 1.0,
                                                                              "val_accuracy": 0.7}],
                 "seed 1": [{"epoch": 1, "loss": 1.5}]}  # fmt: skip
    fig = plots.training_curves(histories)
    left, right = fig.axes
    assert len(left.lines) == 2 and len(right.lines) == 1 and list(right.lines[0].get_ydata()) == [0.5, 0.7]


# -- notebooks 02 and 03 --------------------------------------------------------------------


def test_ssl_loss_plots_loss_and_speed_on_two_axes():
    fig = embedding.ssl_loss([{"epoch": e, "loss": 5.0 - e, "images_per_second": 600.0} for e in (1, 2, 3)])
    loss, speed = fig.axes
    assert list(loss.lines[0].get_ydata()) == [4.0, 3.0, 2.0] and list(speed.lines[0].get_ydata()) == [600.0] * 3


def test_explained_variance_is_cumulative_per_embedding():
    fig = embedding.explained_variance({"a": np.array([0.5, 0.3, 0.2]), "b": np.array([0.9, 0.1])})
    lines = fig.axes[0].lines
    assert [list(line.get_ydata()) for line in lines] == [pytest.approx([0.5, 0.8, 1.0]), pytest.approx([0.9, 1.0])]


def test_maps_draw_one_panel_per_embedding_and_projection_coloured_by_class():
    y = np.arange(16) % 8
    coords = {(e, p): (RNG.normal(size=(10, 2)), np.arange(10)) for e in ("simclr", "pixels") for p in ("pca", "umap")}
    fig = embedding.maps(coords, y)
    scatters = [c for ax in fig.axes for c in ax.collections if isinstance(c, PathCollection)]
    assert len(fig.axes) == 4 and len(scatters) == 4 and all(len(s.get_offsets()) == 10 for s in scatters)
    assert "simclr · pca (10 images)" in texts(fig)
    assert [t.get_text() for t in fig.legends[0].get_texts()] == list(SHORT_NAMES)


def test_k_sweep_and_k_distances_draw_a_curve_per_embedding():
    table = pd.DataFrame({"k": [2, 3, 4], "inertia": [10.0, 5.0, 4.0], "silhouette": [0.2, 0.4, 0.3]})
    fig = embedding.k_sweep({"a": table, "b": table})
    left, right = fig.axes
    assert list(left.lines[0].get_ydata()) == [1.0, 0.5, 0.4] and len(right.lines) == 2 + 1  # + the class line
    fig = embedding.k_distances({"a": (np.array([0.1, 0.2, 0.9]), 0.2)}, k=4)
    assert "eps = 0.200" in fig.axes[0].get_legend().get_texts()[0].get_text()


def test_contingency_draws_a_heatmap_of_shares_per_table_and_hides_spare_panels():
    table = pd.DataFrame([[3, 1], [0, 2]], index=["a", "b"], columns=[0, 1])
    fig = embedding.contingency({"one": table, "two": table}, columns=3)
    shown = [ax for ax in fig.axes if ax.get_visible() and ax.axison]
    assert len(shown) == 2 and np.allclose(shown[0].collections[0].get_array().reshape(2, 2), [[0.75, 0.25], [0, 1]])


def test_metric_bars_show_each_method_and_model_per_metric():
    rows = [{"method": m, "model": e, "metric": k, "value": 0.5} for m in ("kmeans", "dbscan")
            for e in ("simclr", "pixels") for k in ("ari", "nmi", "silhouette")]  # fmt: skip
    fig = embedding.metric_bars(pd.DataFrame(rows))
    assert [ax.get_title() for ax in fig.axes] == ["ari", "nmi", "silhouette"] and len(bars(fig.axes[0])) == 4


def test_accuracy_vs_labels_has_a_panel_per_embedding_and_a_line_per_method():
    rows = []
    for model in ("simclr", "cnn"):
        for method in ("labelled_only", "label_spreading (kernel=knn)"):
            for fraction in (0.01, 0.05):
                rows += results.rows({"accuracy": 0.8}, method=method, model=model, label_fraction=fraction,
                                     n_labels=1, seed=0, split="test", wall_seconds=1.0, profile="smoke")  # fmt: skip
    fig = embedding.accuracy_vs_labels(results.frame(rows))
    assert [ax.get_title() for ax in fig.axes] == ["simclr embeddings", "cnn embeddings"]
    assert len([line for line in fig.axes[0].lines if len(line.get_xdata()) == 2]) == 2


def test_propagated_shares_draw_each_method_next_to_the_truth():
    shares = pd.DataFrame([{"method": m, "label_fraction": 0.05, "seed": 0, "class": c, "propagated": 0.5,
                            "true": 0.5} for m in ("a", "b") for c in ("x", "y")])  # fmt: skip
    fig = embedding.propagated_shares(shares)
    assert len(bars(fig.axes[0])) == 3 * 2 and fig.axes[0].get_title() == "5% labels"


# -- notebook 04 ----------------------------------------------------------------------------


def round_log(methods=("a", "b"), fractions=(0.01, 0.05)) -> pd.DataFrame:
    rows = [{"method": m, "label_fraction": f, "seed": 0, "round": r, "n_pseudo": 10 * r, "pseudo_accuracy": 0.9,
             "test_accuracy": 0.8, "test_macro_f1": 0.7, "class_counts": [1 + r] * 8}
            for m in methods for f in fractions for r in (0, 1)]  # fmt: skip
    return pd.DataFrame(rows)


def test_rounds_draw_four_panels_per_fraction_and_a_line_per_method():
    fig = pseudo.rounds(round_log())
    assert len(fig.axes) == 2 * 4 and len(fig.axes[0].lines) >= 2
    assert fig.axes[4].get_title() == "pseudo-labels in the training set (5% labels)"


def test_class_balance_stacks_each_round_and_the_truth():
    fig = pseudo.class_balance(round_log(methods=("a",), fractions=(0.05,)), np.full(8, 1 / 8))
    ax = fig.axes[0]
    assert [t.get_text() for t in ax.get_yticklabels()] == ["0", "1", "truth"] and len(bars(ax)) == 3 * 8


def test_roc_curves_draw_a_curve_per_class_and_the_diagonal():
    y = np.arange(40) % 8
    fig = pseudo.roc_curves({"demo": (y, np.eye(8)[y])})
    ax = fig.axes[0]
    assert len(ax.lines) == 8 + 1 and "AUC 1.000" in ax.get_legend().get_texts()[0].get_text()


def test_accuracy_by_method_writes_each_mean():
    summary = pd.DataFrame({"method": ["a", "b"], "label_fraction": [0.05, 0.05], "mean": [0.9, 0.8],
                            "std": [0.01, np.nan], "n": [3, 1]})  # fmt: skip
    fig = pseudo.accuracy_by_method(summary)
    ax = fig.axes[0]
    assert [t.get_text() for t in ax.texts] == [" 90.00", " 80.00"] and len(bars(ax)) == 2
    assert [t.get_text() for t in ax.get_yticklabels()] == ["a @ 5 %", "b @ 5 %"]


def test_online_training_curves_draw_three_panels_per_run():
    history = pd.DataFrame([{"method": m, "label_fraction": 0.05, "seed": 0, "step": s, "mask_rate": 0.5,
                             "pseudo_accuracy": 0.9, "val_accuracy": 0.8} for m in ("fixmatch", "flexmatch")
                            for s in (100, 200)])  # fmt: skip
    fig = pseudo.training_curves(history)
    assert len(fig.axes) == 3 and all(len(ax.lines) >= 2 for ax in fig.axes)


def test_shared_errors_annotate_each_pair():
    table = pd.DataFrame([[1.0, 0.6], [0.7, 1.0]], index=["a", "b"], columns=["a", "b"])
    fig = pseudo.shared_errors({"5 %": table})
    assert [t.get_text() for t in fig.axes[0].texts] == ["1.00", "0.60", "0.70", "1.00"]


# -- notebook 05 ----------------------------------------------------------------------------

SIZE = Plan(fractions=(0.01,), rounds=2, budget=40, epochs=1, min_epoch_samples=0, finetune={},
                 budgets=(80,), thresholds=(0.9,), ablation_rounds=1, learner={}, strategies=("margin",))  # fmt: skip


def study_table() -> pd.DataFrame:
    rows = []
    arms = {"baseline": {}, "ssl": {"threshold": 0.99}, "al": {"strategy": "least_confidence", "budget": 40},
            "ssl_al": {"strategy": "least_confidence", "budget": 40, "threshold": 0.99}}  # fmt: skip
    runs = [(arm, params, SIZE.rounds if arm != "baseline" else 0) for arm, params in arms.items()]
    runs += [("ssl_al", {"strategy": "margin", "budget": 40, "threshold": 0.99}, 1),
             ("ssl_al", {"strategy": "least_confidence", "budget": 80, "threshold": 0.99}, 1),
             ("ssl_al", {"strategy": "least_confidence", "budget": 40, "threshold": 0.9}, 1)]  # fmt: skip
    for seed in (0, 1):
        for arm, params, last in runs:
            for r in range(last + 1):
                keys = dict(
                    method=arm,
                    round=r,
                    params=params,
                    model="cnn",
                    label_fraction=0.01,
                    n_labels=120 + r * params.get("budget", 0),
                    seed=seed,
                    wall_seconds=1.0,
                    profile="smoke",
                )
                rows += results.rows({"accuracy": 0.8 + 0.01 * r, "macro_f1": 0.7}, split="test", **keys)
                rows += results.rows({"n_pseudo": 100 * r, "pseudo_accuracy": 0.95}, split="train", **keys)
    return results.frame(rows)


def test_arms_by_round_draw_each_arm_against_human_labels():
    fig = active.arms_by_round(study_table(), SIZE)
    ax = fig.axes[0]
    assert ax.get_xlabel() == "labels given by a person" and ax.get_title() == "start at 1% labels"
    assert {t.get_text() for t in ax.get_legend().get_texts()} == set(ARM_NAMES.values())


def test_learning_curves_ablation_curves_and_pseudo_labels_read_the_settings_columns():
    table = study_table()
    fig = active.learning_curves(table, SIZE)
    assert {t.get_text() for t in fig.axes[0].get_legend().get_texts()} == {"least_confidence", "margin"}
    fig = active.ablation_curves(table, SIZE)
    budget, threshold = fig.axes
    assert sorted(budget.lines[0].get_xdata()) == [40, 80] and sorted(threshold.lines[0].get_xdata()) == [0.9, 0.99]
    fig = active.pseudo_labels(table, SIZE)
    assert [ax.get_ylabel() for ax in fig.axes] == ["n pseudo", "pseudo accuracy"]
    assert sorted(fig.axes[0].lines[0].get_xdata()) == [1, 2]


def test_query_gallery_and_queried_classes_show_what_each_strategy_asked_for():
    images = np.zeros((20, 28, 28, 3), np.uint8)
    labels = np.arange(20) % 8
    queries = {"margin": np.array([0, 1, 2]), "random": np.array([3, 11])}
    fig = active.query_gallery(images, labels, queries, n=4)
    assert sum(bool(ax.images) for ax in fig.axes) == 5
    assert {ax.get_title() for ax in fig.axes if ax.images} >= {SHORT_NAMES[0][:10], SHORT_NAMES[3][:10]}
    fig = active.queried_classes(labels, queries)
    heights = sorted(round(b.get_height(), 3) for b in bars(fig.axes[0]))
    assert heights == [0.333, 0.333, 0.333, 1.0]  # random asked class 3 twice: one bar of share 1


def test_accuracy_by_severity_draws_a_panel_per_model_and_a_line_per_recipe():
    table = pd.DataFrame([{"model": model, "recipe": recipe, "severity": level, "mean": 0.9 - level / 10, "std": 0.01}
                          for model, recipes in (("cnn", ("cell", "cell+medmnistc")), ("small_cnn", ("none",)))
                          for recipe in recipes for level in (-1, 0, 3)])  # fmt: skip
    fig = robustness.accuracy_by_severity(table)
    assert [ax.get_title() for ax in fig.axes] == ["cnn", "small_cnn"]
    assert [len(ax.containers) for ax in fig.axes] == [2, 1]
    assert [tick.get_text() for tick in fig.axes[0].get_xticklabels()] == ["clean", "0 (1/5)", "3 (4/5)"]
