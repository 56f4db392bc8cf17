from __future__ import annotations

import nbformat
import numpy as np
import pandas as pd
import pytest

from bloodssl import paths, predictions, readme, reports, results, tables


def _notebook(path, source: str):
    cells = [nbformat.v4.new_code_cell('profile = "smoke"\nseed = 0', metadata={"tags": ["parameters"]}),
             nbformat.v4.new_code_cell(source)]  # fmt: skip
    nb = nbformat.v4.new_notebook(cells=cells, metadata={"kernelspec": {"name": "python3", "language": "python",
                                                                        "display_name": "Python 3"}})  # fmt: skip
    nbformat.write(nb, path)
    return path


@pytest.mark.notebooks
def test_failing_notebook_leaves_the_previous_report(tmp_path):
    out = tmp_path / "reports"
    good = _notebook(tmp_path / "90_demo.ipynb", "print('profile is', profile)")
    reports.execute(good, "smoke", reports_dir=out)
    published = (out / "90_demo.ipynb").read_text()
    assert "profile is smoke" in published and (out / "90_demo.html").is_file()

    _notebook(tmp_path / "90_demo.ipynb", "raise RuntimeError('boom')")
    with pytest.raises(Exception, match="boom"):
        reports.execute(good, "smoke", reports_dir=out)
    assert (out / "90_demo.ipynb").read_text() == published
    assert "boom" in (out / "failed" / "90_demo.ipynb").read_text()


WRITES = """
import matplotlib.pyplot as plt
from bloodssl import results
from bloodssl.viz import plots
results.save(results.rows({"accuracy": VALUE}, method="m", model="cnn", label_fraction=1.0, n_labels=1, seed=0,
                          split="test", wall_seconds=1.0, profile=profile), "90_demo")
fig = plt.figure(); plots.save(fig, "90_demo_FIGURE")
"""


@pytest.mark.notebooks
def test_a_notebook_that_fails_late_publishes_none_of_its_results_or_figures(tmp_path, monkeypatch):
    # break: let the kernel write to paths.reports_for(profile) directly (no staging) -> the failed run's
    # results replace the published ones and its figure appears beside the old report
    monkeypatch.setattr(reports.paths, "REPORTS", tmp_path / "reports")
    published = tmp_path / "reports" / "smoke"
    good = _notebook(tmp_path / "90_demo.ipynb", WRITES.replace("VALUE", "0.9").replace("FIGURE", "old"))
    reports.execute(good, "smoke")
    assert results.read(published / "results" / "90_demo.csv")["value"].tolist() == [0.9]
    _notebook(tmp_path / "90_demo.ipynb", WRITES.replace("VALUE", "0.1").replace("FIGURE", "new") + "raise ValueError")
    with pytest.raises(Exception, match="ValueError"):
        reports.execute(good, "smoke")
    assert results.read(published / "results" / "90_demo.csv")["value"].tolist() == [0.9]
    assert sorted(p.name for p in (published / "figures").iterdir()) == ["90_demo_old.png"]
    # a successful run replaces the figures the notebook no longer draws
    _notebook(tmp_path / "90_demo.ipynb", WRITES.replace("VALUE", "0.5").replace("FIGURE", "new"))
    reports.execute(good, "smoke")
    assert results.read(published / "results" / "90_demo.csv")["value"].tolist() == [0.5]
    assert sorted(p.name for p in (published / "figures").iterdir()) == ["90_demo_new.png"]


@pytest.mark.notebooks
def test_a_failing_notebook_does_not_stop_the_others_and_is_listed(tmp_path, monkeypatch):
    # break: let the first failure raise out of the loop -> the second notebook never runs
    monkeypatch.setattr(reports.paths, "REPORTS", tmp_path / "reports")
    bad = _notebook(tmp_path / "91_bad.ipynb", "raise RuntimeError('boom')")
    good = _notebook(tmp_path / "92_good.ipynb", "print('fine')")
    assert reports.run_all([bad, good], "smoke") == ["91_bad.ipynb"]
    assert (tmp_path / "reports" / "smoke" / "92_good.html").is_file()
    with pytest.raises(SystemExit, match="1 notebook\\(s\\) failed.*91_bad.ipynb"):
        monkeypatch.setattr(reports, "notebooks", lambda: [bad, good])
        reports.main(["run", "--profile", "smoke"])


def test_readme_tables_come_from_the_results(tmp_path, monkeypatch):
    keys = dict(method="supervised", model="cnn", label_fraction=1.0, n_labels=10, profile="default")
    records = []
    for seed, (acc, seconds, speed) in enumerate([(0.96, 30.0, 1000.0), (0.98, 150.0, 2000.0)]):
        records += results.rows({"accuracy": acc, "macro_f1": acc - 0.01, "auc": 0.999}, seed=seed, split="test",
                                wall_seconds=seconds, **keys)  # fmt: skip
        records += results.rows({"train_images_per_second": speed}, seed=seed, split="train", wall_seconds=seconds,
                                **keys)  # fmt: skip
    records += results.rows({"train_images_per_second": 700.0}, method="encoder", model="cnn", label_fraction=0.0,
                            n_labels=0, seed=0, split="train", wall_seconds=600.0, profile="default")  # fmt: skip
    results.save(records, "01_demo", results_dir=tmp_path / "results")
    pd.DataFrame([{"notebook": "01_demo", "profile": "default", "wall_seconds": 600}]).to_csv(
        tmp_path / "results" / "timings.csv", index=False)  # fmt: skip
    pd.DataFrame([{"command": "make reports", "profile": "default", "wall_seconds": 3000.0}]).to_csv(
        tmp_path / "results" / "from_scratch.csv", index=False)  # fmt: skip
    monkeypatch.setattr(reports.paths, "REPORTS", tmp_path)
    readme_file = tmp_path / "README.md"
    readme_file.write_text(f"# title\n{readme.README_START}\nold\n{readme.README_END}\ntail\n")
    readme.update_readme(readme_file)
    text = readme_file.read_text()
    assert "old" not in text and text.startswith("# title") and text.endswith("tail\n")
    assert "| seeds | accuracy (%) | macro-F1 (%) | AUC (%) | wall time / run | train images/s |" in text
    assert (
        "| supervised | cnn | 100 % | default | 2 | 97.00 ± 1.41 | 96.00 ± 1.41 | 99.90 ± 0.00 | 1.5 min | 1,500 |"
        in text
    )
    assert "| 01_demo | default | 10.0 min |" in text
    assert "| make reports | default | 50.0 min |" in text.split("**From scratch**")[1]
    # the encoder predicts no test image, so its cost gets its own table and no results row
    training_only = text.split("Trained without a test prediction")[1]
    assert "| method | model | profile | seeds | wall time / run | train images/s |" in training_only
    assert "| encoder | cnn | default | 1 | 10.0 min | 700 |" in training_only and "supervised" not in training_only
    assert "| encoder | cnn | 0 %" not in text


def test_targets_pick_the_best_method_on_validation_and_say_whether_it_is_met(tmp_path):
    keys = dict(model="cnn", label_fraction=0.05, n_labels=10, wall_seconds=1.0, profile="default")
    scores = {"a": {"val": 0.90, "test": 0.97}, "b": {"val": 0.95, "test": 0.93}}  # a wins on test, b on val
    records = [row for method, split_scores in scores.items() for split, acc in split_scores.items()
               for seed in range(3) for row in results.rows({"accuracy": acc}, method=method, split=split, seed=seed,
                                                            **keys)]  # fmt: skip
    results.save(records, "03_demo", results_dir=tmp_path)
    targets = [
        readme.Target("03_demo", "best at 5 %", 0.90, 0.05),
        readme.Target("03_demo", "best", 0.95, 0.05),
        readme.Target("03_demo", "at 1 %", 0.9, 0.01),
        readme.Target("09_missing", "nothing", 0.5, 0.05),
    ]
    table = readme.target_table(tmp_path, targets)
    assert table["method"].tolist()[:2] == ["b (cnn)", "b (cnn)"] and table["seeds"].tolist()[:2] == [3, 3]
    assert table["measured"].tolist()[:2] == ["93.00 ± 0.00", "93.00 ± 0.00"]
    assert table["met"].tolist() == ["yes", "no", "no matching results", "no results yet"]
    assert table["target"][0] == "best at 5 % ≥ 90 %"


@pytest.mark.parametrize("seconds, text", [(0.01, "< 0.1 s"), (12.34, "12.3 s"), (90.0, "1.5 min"),
                                           (float("nan"), "")])  # fmt: skip
def test_duration_reads_as_seconds_or_minutes(seconds, text):
    assert tables.duration(seconds) == text


def test_readme_without_markers_is_refused(tmp_path):
    readme_file = tmp_path / "README.md"
    readme_file.write_text("# no markers\n")
    with pytest.raises(ValueError, match="lacks the markers"):
        readme.update_readme(readme_file)


def test_cost_table_averages_wall_time_per_seed_and_each_measured_speed():
    keys = dict(method="m", model="cnn", label_fraction=0.05, n_labels=10, profile="default")
    records = []
    for seed, seconds in enumerate([60.0, 120.0]):
        run = dict(seed=seed, wall_seconds=seconds, **keys)
        records += results.rows({"accuracy": 0.9, "macro_f1": 0.9}, split="test", **run)  # two rows, one run
        records += results.rows({"train_images_per_second": 1000.0 * (seed + 1)}, split="train", **run)
        records += results.rows({"inference_images_per_second": 500.0}, split="test", **run)
    cost = tables.cost_table(results.frame(records), ["method", "label_fraction"], speeds=("train", "inference"))
    assert cost.to_dict("records") == [{"method": "m", "label_fraction": 0.05, "wall time / run": "1.5 min",
                                        "train images/s": "1,500", "inference images/s": "500"}]  # fmt: skip
    assert list(tables.cost_table(results.frame(records), ["method"]).columns) == [
        "method", "wall time / run", "train images/s"]  # fmt: skip


def test_the_readme_shows_each_source_and_folds_all_but_the_default_profile(tmp_path):
    # break: read only reports/results -> the earlier runs' targets and tables disappear from the README
    for name, accuracy in (("default", 0.94), ("earlier", 0.952)):
        records = []
        for seed in range(2):
            for split in ("val", "test"):
                run = dict(method="fixmatch", model="cnn", label_fraction=0.05, n_labels=598, seed=seed)
                records += results.rows(
                    {"accuracy": accuracy}, split=split, wall_seconds=60.0, profile="default", **run
                )
        results.save(records, "04_pseudo_labelling", results_dir=tmp_path / name)
    chosen = [readme.Source("default", tmp_path / "default", "one hour"),
              readme.Source("earlier", tmp_path / "earlier", "kept")]  # fmt: skip
    text = readme.readme_section(chosen)
    targets = [
        line
        for line in text.splitlines()
        if line.startswith("| 04_pseudo_labelling | best pseudo-labelling method at 5")
    ]
    assert [line.split(" | ")[2:6] for line in targets] == [
        ["default", "fixmatch (cnn)", "2", "94.00 ± 0.00"],
        ["earlier", "fixmatch (cnn)", "2", "95.20 ± 0.00"],
    ]
    assert text.index("### Results: default profile") < text.index("<details><summary><b>Results: earlier</b>")
    assert text.count("**04_pseudo_labelling**") == 2 and "*earlier*: kept." in text


def test_a_notebook_run_by_hand_writes_where_its_profile_and_dataset_belong(tmp_path, monkeypatch):
    # break: let route keep reports/results for every profile -> a smoke run in Jupyter replaces published numbers
    monkeypatch.delenv("BLOODSSL_REPORTS", raising=False)
    for name, value in (("REPORTS", tmp_path), ("RESULTS", tmp_path / "results"), ("FIGURES", tmp_path / "figures")):
        monkeypatch.setattr(paths, name, value)
    row = results.rows({"accuracy": 0.5}, method="m", model="cnn", label_fraction=1.0, n_labels=1, seed=0,
                       split="test", wall_seconds=1.0, profile="smoke")  # fmt: skip
    assert paths.route("smoke") == tmp_path / "smoke"
    results.save(row, "01_demo")
    assert (tmp_path / "smoke" / "results" / "01_demo.csv").is_file() and not (tmp_path / "results").exists()
    assert paths.route("default", "pneumoniamnist") == tmp_path / "pneumoniamnist"
    assert tmp_path / "pneumoniamnist" / "figures" == paths.FIGURES
    assert paths.route("default") == tmp_path and tmp_path / "results" == paths.RESULTS
    # under reports.execute (or the tests) $BLOODSSL_REPORTS names the folder and route keeps it
    monkeypatch.setenv("BLOODSSL_REPORTS", str(tmp_path / "staging"))
    monkeypatch.setattr(paths, "RESULTS", tmp_path / "staging" / "results")
    paths.route("smoke")
    assert tmp_path / "staging" / "results" == paths.RESULTS


def test_a_throughput_target_reads_the_stream_rows_and_the_readme_lists_each_labelling_run(tmp_path):
    keys = dict(method="supervised", model="cnn", label_fraction=1.0, n_labels=100, seed=0, profile="default")
    records = []
    for precision, rate in (("int8", 5000.0), ("fp32", 2500.0)):
        params = {"precision": precision, "threads": 2}
        records += results.rows({"labelled_images_per_second": rate, "labelled_images": 200_000, "peak_rss_mib": 900},
                                split="stream", wall_seconds=40.0, params=params, **keys)  # fmt: skip
    records += results.rows({"labelled_images_per_second": 9000.0}, split="stream", wall_seconds=1.0,
                            params={"precision": "int8", "threads": 1}, **keys)  # fmt: skip
    results.save(records, "08_demo", results_dir=tmp_path)
    target = readme.Target("08_demo", "fast path", 4000, 1.0, "supervised", "cnn", "labelled_images_per_second",
                           params=(("precision", "int8"), ("threads", 2)), split="stream")  # fmt: skip
    row = readme.target_table(tmp_path, [target]).iloc[0]
    assert (row["measured"], row["met"], row["target"]) == ("5000", "yes", "fast path ≥ 4,000 images/s")
    stream = tables.stream_table(results.read(tmp_path / "08_demo.csv"))
    assert stream["images/s"].tolist() == ["5,000", "2,500", "9,000"]
    assert stream["peak memory (MiB)"].tolist()[:2] == ["900", "900"] and stream["wall time"][0] == "40.0 s"
    assert stream["settings"][0] == "precision=int8, threads=2"
    assert tables.stream_table(results.read(tmp_path / "08_demo.csv").query("split != 'stream'")).empty


def test_publishing_removes_the_parts_the_new_predictions_no_longer_list(tmp_path, monkeypatch):
    # break: move the staged files without the clean-up -> the old run's parts stay beside the new file
    staging, outputs = tmp_path / "staging" / "results", tmp_path / "reports" / "results"
    labels = np.arange(40) % 4

    def runs(n, offset):  # n runs of distinct probabilities, one a part
        return [predictions.Prediction(predictions.run_keys("supervised", "cnn", 0.01, seed, "default"), "test",
                                       labels, np.eye(4, dtype=np.float32)[(labels + seed) % 4] * 0.9 + 0.025)
                for seed in range(offset, offset + n)]  # fmt: skip

    monkeypatch.setattr(predictions, "PART_BYTES", 40 * 4 * 4)
    for folder in (staging, outputs):
        folder.mkdir(parents=True)
    predictions.save(runs(3, 0), "90_demo", outputs)  # the published run: two parts
    predictions.save(runs(2, 3), "91_other", outputs)
    predictions.save(runs(2, 5), "90_demo", staging)  # the new run: one part, named by other content
    kept = sorted(p.name for p in outputs.glob("91_other*"))
    reports.publish(staging.parent, outputs.parent, "90_demo")
    assert len(list(outputs.glob("90_demo.predictions-*.npz"))) == 1
    assert sorted(p.name for p in outputs.glob("91_other*")) == kept
    assert [p.keys["seed"] for p in predictions.load("90_demo", outputs)] == [5, 6]


def test_a_damaged_new_predictions_file_publishes_nothing(tmp_path):
    # break: read the staged file's part list only after moving it -> the new results replace the old, the
    # damaged predictions stop the publish halfway and the published table no longer matches its predictions
    staging, outputs = tmp_path / "staging", tmp_path / "reports"
    for folder in (staging, outputs):
        (folder / "results").mkdir(parents=True)
        (folder / "figures").mkdir()
    results.save(results.frame(results.rows({"accuracy": 0.9}, method="supervised", model="cnn", label_fraction=1.0,
                                            n_labels=1, seed=0, split="test", wall_seconds=1.0, profile="smoke")),
                 "90_demo", results_dir=outputs / "results")  # fmt: skip
    (outputs / "figures" / "90_demo_old.png").write_bytes(b"old")  # a figure the new run no longer draws
    published = sorted(p.name for p in outputs.rglob("*"))
    (staging / "results" / "90_demo.csv").write_text("new")
    (staging / "figures" / "90_demo_new.png").write_bytes(b"png")
    (staging / "results" / f"90_demo{predictions.SUFFIX}").write_bytes(b"not a zip archive")
    with pytest.raises(ValueError, match="90_demo"):
        reports.publish(staging, outputs, "90_demo")
    assert sorted(p.name for p in outputs.rglob("*")) == published
    assert results.read(outputs / "results" / "90_demo.csv")["value"].tolist() == [0.9]


def test_a_timing_says_which_cpu_measured_it(tmp_path):
    # break: drop the vector width, or read the last CPU's fields -> two machines 3x apart look alike
    info = (
        "processor\t: 0\nmodel name\t: AMD EPYC\nflags\t\t: fpu avx2 avx512f\n\nprocessor\t: 1\nmodel name\t: other\n"
    )
    assert reports.cpu_name(info) == "AMD EPYC, AVX-512"
    assert reports.cpu_name(info.replace(" avx512f", "")) == "AMD EPYC, AVX2"
    reports.record_timing("01_demo", "default", 12.3, tmp_path)
    (row,) = pd.read_csv(tmp_path / "timings.csv").to_dict("records")
    assert row["cpu"] == reports.cpu_name() and row["wall_seconds"] == 12.3
