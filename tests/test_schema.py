"""The results schema: settings and rounds are columns, the README and the targets read
them, and the old files were converted without losing a value."""

from __future__ import annotations

import importlib.util
import json

import numpy as np
import pandas as pd
import pytest

from bloodssl import paths, readme, results

KEYS = dict(model="cnn", label_fraction=0.01, n_labels=120, split="test", wall_seconds=1.0, profile="default")
CONVERTER = paths.ROOT / "scripts" / "convert_results.py"


def load_converter():
    spec = importlib.util.spec_from_file_location("convert_results", CONVERTER)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_rows_write_settings_as_sorted_json_and_no_round_for_a_final_result():
    (row,) = results.rows({"accuracy": 0.9}, method="fixmatch", params={"steps": 3000, "align": False}, seed=0, **KEYS)
    assert row["params"] == '{"align":false,"steps":3000}' and np.isnan(row["round"])
    (plain,) = results.rows({"accuracy": 0.9}, method="supervised", seed=0, **KEYS)
    assert plain["params"] == "{}"
    assert results.display_name("fixmatch", row["params"]) == "fixmatch (align=False, steps=3000)"
    assert results.display_name("supervised", "{}") == "supervised"


def test_final_keeps_each_run_s_result_and_only_the_last_round_of_round_only_runs():
    rows = []
    for r, acc in enumerate([0.5, 0.6, 0.7]):  # a loop measured round by round only
        rows += results.rows({"accuracy": acc}, method="ssl_al", round=r, params={"budget": 40}, seed=0, **KEYS)
    rows += results.rows({"accuracy": 0.8}, method="self_training", round=1, seed=0, **KEYS)  # a round ...
    rows += results.rows({"accuracy": 0.9}, method="self_training", seed=0, **KEYS)  # ... and the run's result
    # break: keep every round (or the first one) -> three ssl_al rows, or 0.5
    final = results.final(results.frame(rows))
    assert sorted(zip(final["method"], final["value"], strict=True)) == [("self_training", 0.9), ("ssl_al", 0.7)]


def test_a_target_with_a_round_and_settings_reads_only_those_rows(tmp_path):
    rows = []
    for seed in (0, 1):
        for budget, acc in ((40, 0.91), (200, 0.99)):
            for r in (2, 3):
                params = {"budget": budget, "strategy": "least_confidence"}
                for split in ("val", "test"):
                    rows += results.rows({"accuracy": acc + r / 1000 + seed / 100}, method="ssl_al", round=r,
                                         params=params, seed=seed, **{**KEYS, "split": split})  # fmt: skip
    results.save(rows, "05_demo", results_dir=tmp_path)
    target = readme.Target("05_demo", "SSL+AL at round 2", 0.95, 0.01, "ssl_al", round=2, params=(("budget", 40),))
    # break: ignore the round (3 is better) or the settings (budget 200 is better) -> another measured value
    (row,) = readme.target_table(tmp_path, [target]).to_dict("records")
    assert row["measured"] == "91.70 ± 0.71" and row["met"] == "no" and "budget=40" in row["method"]


def test_a_target_with_a_label_count_reads_only_runs_that_end_there(tmp_path):
    rows = []
    for budget, rounds, acc in ((60, 2, 0.91), (50, 3, 0.99)):  # 119 + 120 labels; 119 + 150
        params = {"budget": budget, "strategy": "least_confidence"}
        for r in range(rounds + 1):
            for split in ("val", "test"):
                rows += results.rows({"accuracy": acc}, method="ssl_al", round=r, params=params, seed=0,
                                     **{**KEYS, "n_labels": 119 + r * budget, "split": split})  # fmt: skip
    results.save(rows, "05_demo", results_dir=tmp_path)
    target = readme.Target("05_demo", "SSL+AL to 2 %", 0.95, 0.01, "ssl_al", n_labels=239)
    # break: ignore n_labels -> the run that ends at 269 labels (better on val) is measured
    (row,) = readme.target_table(tmp_path, [target]).to_dict("records")
    assert row["measured"] == "91.00" and "budget=60" in row["method"]


def test_a_results_file_of_the_old_schema_is_refused_with_the_fix(tmp_path):
    pd.DataFrame([{c: 0 for c in results.COLUMNS if c not in ("round", "params")}]).to_csv(tmp_path / "x.csv")
    with pytest.raises(ValueError, match=r"lacks the column\(s\) round, params.*scripts/convert_results.py"):
        results.read(tmp_path / "x.csv")


@pytest.mark.parametrize(
    ("old", "method", "params", "round_"),
    [
        ("label_propagation_knn", "label_propagation", {"kernel": "knn"}, None),
        ("threshold-0.5", "self_training", {"selection": "threshold", "threshold": 0.5}, None),
        ("per_class", "self_training", {"selection": "per_class"}, None),
        ("fixmatch-9000", "fixmatch", {"steps": 9000}, None),
        ("fixmatch-plain", "fixmatch", {"steps": 1000, "teacher": "online", "align": False}, None),
        (
            "ssl_al round=3 strategy=margin budget=40 threshold=0.99",
            "ssl_al",
            {"strategy": "margin", "budget": 40, "threshold": 0.99},
            3,
        ),
        ("baseline round=0", "baseline", {}, 0),
        ("kmeans", "kmeans", {}, None),
    ],
)
def test_old_names_convert_into_method_settings_and_round(old, method, params, round_):
    got_method, got_params, got_round = load_converter().method_and_params(old)
    assert (got_method, got_params) == (method, params)
    assert (np.isnan(got_round) and round_ is None) or got_round == round_


def test_round_metrics_of_the_old_schema_become_rows_of_their_round():
    old = pd.DataFrame([{**KEYS, "method": "threshold-0.5", "seed": 0, "metric": "round1_val_accuracy", "value": 0.7,
                         "split": "train"}])  # fmt: skip
    (row,) = load_converter().convert(old).to_dict("records")
    assert (row["metric"], row["split"], row["round"], json.loads(row["params"])) == (
        "accuracy",
        "val",
        1,
        {"selection": "threshold", "threshold": 0.5},
    )


def test_the_committed_readme_tables_are_what_the_committed_results_give():
    # break: edit a number in the README by hand, or commit results without `make readme`
    text = (paths.ROOT / "README.md").read_text(encoding="utf-8")
    committed = text.split(readme.README_START, 1)[1].split(readme.README_END, 1)[0]
    generated = readme.readme_section(readme.sources(paths.ROOT / "reports"))
    assert readme.README_START + committed + readme.README_END == generated
    earlier = readme.earlier_source(paths.ROOT / "reports")
    page = readme.generated(paths.ROOT / "reports" / "earlier" / "README.md")
    assert page == readme.readme_section([earlier], opened="earlier")
    assert "| earlier |" not in committed  # numbers without predictions stay out of the README


def test_every_number_of_the_committed_readme_reproduces_from_the_saved_predictions():
    # issue 16, finding 8; break: show a run that kept no predictions, or edit a README number or a prediction
    reports = paths.ROOT / "reports"
    assert readme.rescored_differences(paths.ROOT / "README.md", readme.sources(reports)) == []


def test_the_default_profile_was_regenerated_from_scratch_within_an_hour_and_the_readme_says_so():
    # issue 16, finding 9; break: add a notebook without timing `make fresh-reports` again, or let it exceed an hour
    table = pd.read_csv(paths.ROOT / "reports" / "results" / "from_scratch.csv", dtype={"notebooks": str})
    every = " ".join(path.stem[:2] for path in sorted((paths.ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb")))
    (row,) = table[table["notebooks"] == every].to_dict("records")
    assert row["profile"] == "default" and row["reused"].startswith("nothing") and row["cpu_cores"] == 2
    assert row["wall_seconds"] <= 3600, f"make reports took {row['wall_seconds'] / 60:.1f} min from scratch"
    readme_text = (paths.ROOT / "README.md").read_text(encoding="utf-8")
    assert f"| make reports | {every} | default | {row['commit']} |" in readme_text
