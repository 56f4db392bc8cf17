"""Per-image predictions are kept beside the results and reproduce every metric."""

from __future__ import annotations

import json
import zipfile

import numpy as np
import pytest

from bloodssl import predictions, readme, results
from bloodssl.core.evaluate import evaluate


def _run(seed: int, n: int = 600, classes: int = 8):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, classes, n)
    logits = rng.normal(size=(n, classes)) + 4 * np.eye(classes)[y] * rng.random((n, 1))
    proba = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    # confident rows near 1 are where float16 probabilities would tie the AUC's ranking
    proba[: n // 3] = 0.9998 * np.eye(classes)[y[: n // 3]] + 0.0002 / classes
    return y, proba.astype(np.float32)


def _saved(tmp_path, seeds=(0, 1)):
    keys = dict(method="fixmatch", model="cnn", label_fraction=0.05, n_labels=598, profile="default",
                params={"steps": 250}, wall_seconds=1.0)  # fmt: skip
    records, kept = [], []
    for seed in seeds:
        for split in ("val", "test"):
            evaluation = evaluate(*_run(seed + (split == "test") * 10))
            records += results.rows(evaluation.metrics, split=split, seed=seed, **keys)
            kept.append(predictions.of(evaluation, split, seed=seed, **keys))
    results.save(records, "04_demo", results_dir=tmp_path)
    predictions.save(kept + kept[:1], "04_demo", results_dir=tmp_path)  # a run given twice is kept once
    return results.read(tmp_path / "04_demo.csv")


def test_saved_predictions_reproduce_every_metric_exactly(tmp_path):
    # break: store float16 (log-)probabilities -> one near-tied test image flips, an AUC moves by 1e-5
    table = _saved(tmp_path)
    loaded = predictions.load("04_demo", tmp_path)
    assert len(loaded) == 4 and {p.split for p in loaded} == {"val", "test"}
    checked = results.rescore_all(tmp_path)
    assert len(checked) == 16 and checked["same"].all(), checked
    assert checked["difference"].max() < 1e-6
    assert set(checked["metric"]) == {"accuracy", "macro_f1", "balanced_accuracy", "auc"}
    assert (tmp_path / "04_demo.predictions.npz").stat().st_size < 4 * 600 * 8 * 4  # float32, compressed
    assert results.main(["rescore", str(tmp_path)]) == 0
    del table


def test_rescore_reports_a_number_that_its_predictions_do_not_give(tmp_path, capsys):
    # break: compare with a loose tolerance (or not at all) -> an edited number passes
    table = _saved(tmp_path)
    edited = table.copy()
    row = (edited["metric"] == "accuracy") & (edited["split"] == "test") & (edited["seed"] == 1)
    edited.loc[row, "value"] += 0.0002  # 0.02 points: the README would print another number
    results.save(edited, "04_demo", results_dir=tmp_path)
    checked = results.rescore_all(tmp_path)
    assert checked[~checked["same"]][["seed", "split", "metric"]].values.tolist() == [[1, "test", "accuracy"]]
    assert results.main(["rescore", str(tmp_path)]) == 1
    assert "1 different" in capsys.readouterr().out


def test_rows_without_predictions_are_counted_not_passed(tmp_path):
    _saved(tmp_path)
    (tmp_path / "04_demo.predictions.npz").unlink()
    checked = results.rescore_all(tmp_path)
    assert checked["rescored"].isna().all() and not checked["same"].any()


def test_non_finite_predictions_are_refused_with_the_fix(tmp_path):
    y, proba = _run(0)
    proba[3] = np.nan
    kept = predictions.Prediction(predictions.run_keys("m", "cnn", 1.0, 0, "smoke"), "test", y, proba)
    with pytest.raises(ValueError, match="NaN or infinite probabilities.*retrain"):
        predictions.save([kept], "04_demo", results_dir=tmp_path)
    assert not (tmp_path / "04_demo.predictions.npz").exists()


def test_a_damaged_predictions_file_names_itself_and_the_fix(tmp_path):
    _saved(tmp_path)
    path = tmp_path / "04_demo.predictions.npz"
    path.write_bytes(path.read_bytes()[:200])
    with pytest.raises(ValueError, match="04_demo.predictions.npz is damaged.*rerun notebooks/04_demo.ipynb"):
        predictions.load("04_demo", tmp_path)


def test_identical_predictions_are_stored_once_and_load_for_every_run(tmp_path):
    # break: store every run's arrays again -> the file holds one copy per run
    y, proba = _run(0)
    runs = [predictions.Prediction(predictions.run_keys(m, "cnn", 0.05, 0, "default"), "test", y, proba)
            for m in ("supervised", "fixmatch", "flexmatch")]  # fmt: skip
    predictions.save(runs, "04_demo", results_dir=tmp_path)
    with np.load(tmp_path / "04_demo.predictions.npz") as data:
        assert data["proba_bytes"].shape == (4, *proba.shape)
    loaded = predictions.load("04_demo", tmp_path)
    assert [p.keys["method"] for p in loaded] == ["supervised", "fixmatch", "flexmatch"]
    assert all(np.array_equal(p.proba, proba) and np.array_equal(p.y_true, y) for p in loaded)


def test_a_subset_is_stored_as_row_numbers_and_rescores_exactly(tmp_path):
    # break: store a subset's own copy, index the whole file instead of its block, or ignore where its rows start
    # -> the file grows or a subset loads other images
    y, proba = _run(0)
    keys = dict(method="supervised", model="cnn", label_fraction=1.0, n_labels=598, seed=0, profile="full")
    other = predictions.Prediction(predictions.run_keys(**keys, params={"tta": "dihedral"}), "test", *_run(1))
    whole = predictions.Prediction(predictions.run_keys(**keys, params={"tta": "none"}), "test", y, proba)
    subsets = {left_out: (np.arange(left_out, 600, 3), {"tta": "none", "left_out": left_out}) for left_out in (1, 2)}
    records = results.rows(evaluate(y, proba).metrics, split="test", wall_seconds=1.0, **keys, params={"tta": "none"})
    kept = [other, whole]
    for rows, params in subsets.values():
        kept.append(predictions.subset(whole, rows, "test_deduplicated", **keys, params=params))
        assert np.array_equal(kept[-1].proba, proba[rows]) and np.array_equal(kept[-1].y_true, y[rows])
        records += results.rows(evaluate(y[rows], proba[rows]).metrics, split="test_deduplicated", wall_seconds=1.0,
                                **keys, params=params)  # fmt: skip
    results.save(records, "07_demo", results_dir=tmp_path)
    predictions.save(kept, "07_demo", results_dir=tmp_path)
    with np.load(tmp_path / "07_demo.predictions.npz") as data:
        assert data["proba_bytes"].shape == (4, 1200, 8) and len(data["rows"]) == 200 + 200
    for loaded in predictions.load("07_demo", tmp_path):
        if loaded.split == "test_deduplicated":
            rows = subsets[json.loads(loaded.keys["params"])["left_out"]][0]
            assert np.array_equal(loaded.proba, proba[rows]) and np.array_equal(loaded.y_true, y[rows])
    checked = results.rescore_all(tmp_path)
    assert len(checked) == 12 and checked["same"].all(), checked


def test_hard_labels_are_stored_as_labels_and_rescore_exactly(tmp_path):
    # break: store one-hot rows as float32, or read a hard run from the probabilities' block -> the file holds
    # 8 floats an image, or a hard run loads another run's numbers
    y, proba = _run(0)
    y_other, proba_other = _run(1)
    keys = dict(method="supervised", model="cnn", label_fraction=1.0, n_labels=598, seed=0, profile="full")
    soft = predictions.Prediction(predictions.run_keys(**keys, params={"tta": "none"}), "test", y, proba)
    hard = predictions.of_labels(y_other, proba_other.argmax(1), 8, "test", **keys, params={"tta": "dihedral"})
    part = predictions.subset(hard, np.arange(0, 600, 2), "test_deduplicated", **keys, params={"tta": "dihedral"})
    records = []
    for prediction in (soft, hard, part):
        records += results.rows(evaluate(prediction.y_true, prediction.proba).metrics, split=prediction.split,
                                wall_seconds=1.0, **keys, params=json.loads(prediction.keys["params"]))  # fmt: skip
    results.save(records, "07_demo", results_dir=tmp_path)
    predictions.save([soft, hard, part], "07_demo", results_dir=tmp_path)
    with np.load(tmp_path / "07_demo.predictions.npz") as data:
        assert data["proba_bytes"].shape == (4, 600, 8) and data["hard_labels"].shape == (600,)
    loaded = {p.split + p.keys["params"]: p for p in predictions.load("07_demo", tmp_path)}
    for prediction in (soft, hard, part):
        found = loaded[prediction.split + prediction.keys["params"]]
        assert np.array_equal(found.proba, prediction.proba) and np.array_equal(found.y_true, prediction.y_true)
    checked = results.rescore_all(tmp_path)
    assert len(checked) == 12 and checked["same"].all(), checked


def test_probabilities_are_stored_as_byte_planes_bit_for_bit_and_smaller(tmp_path):
    # break: put the planes back in another order, or cast through float16 -> a value changes;
    # store the float32 as they are -> the file is no smaller
    rng = np.random.default_rng(0)
    y = rng.integers(0, 8, 3000)
    logits = 2 * rng.normal(size=(3000, 8)) + 8 * np.eye(8)[y]  # a trained network's spread of confidences
    proba = (np.exp(logits) / np.exp(logits).sum(1, keepdims=True)).astype(np.float32)
    tiny = np.finfo(np.float32).smallest_subnormal
    proba[0] = [0.0, 1.0, tiny, 1e-38, np.nextafter(np.float32(1), np.float32(0)), 0.5, 1e-7, 0.0]
    prediction = predictions.Prediction(predictions.run_keys("m", "cnn", 1.0, 0, "full"), "test", y, proba)
    path = predictions.save([prediction], "07_demo", results_dir=tmp_path)
    [loaded] = predictions.load("07_demo", tmp_path)
    assert loaded.proba.dtype == np.float32 and np.array_equal(loaded.proba.view(np.uint32), proba.view(np.uint32))
    plain = tmp_path / "plain.npz"
    np.savez_compressed(plain, proba=proba)
    with zipfile.ZipFile(path) as shuffled, zipfile.ZipFile(plain) as unshuffled:
        assert shuffled.getinfo("proba_bytes.npy").compress_size < 0.96 * unshuffled.getinfo("proba.npy").compress_size


def test_a_predictions_file_written_before_subsets_still_loads(tmp_path):
    y, proba = _run(0, n=10)
    runs = [{**predictions.run_keys("m", "cnn", 1.0, 0, "full"), "split": "test", "start": 0, "stop": 10}]
    np.savez_compressed(tmp_path / "07_demo.predictions.npz", runs=np.array(json.dumps(runs)), y_true=y, proba=proba)
    [loaded] = predictions.load("07_demo", tmp_path)
    assert np.array_equal(loaded.proba, proba) and np.array_equal(loaded.y_true, y) and loaded.split == "test"


def test_a_subset_needs_row_numbers_of_its_whole():
    y, proba = _run(0, n=10)
    whole = predictions.Prediction(predictions.run_keys("m", "cnn", 1.0, 0, "full"), "test", y, proba)
    with pytest.raises(ValueError, match="row numbers of the 10 images of test"):
        predictions.subset(whole, [3, 10], "test_deduplicated", method="m", model="cnn", label_fraction=1.0, seed=0,
                           profile="full")  # fmt: skip


def _readme_from(tmp_path):
    """A README whose generated section is rendered from the results in ``tmp_path``."""
    source = readme.Source("default", tmp_path, "demo")
    page = tmp_path / "README.md"
    page.write_text(f"# demo\n{readme.readme_section([source])}\ntail\n", encoding="utf-8")
    return page, [source]


def test_the_readme_reproduces_from_the_predictions_and_a_changed_image_shows(tmp_path):
    # break: render the check from the stored values (not the predictions) -> a changed prediction passes
    _saved(tmp_path)
    page, chosen = _readme_from(tmp_path)
    assert readme.rescored_differences(page, chosen) == []
    loaded = predictions.load("04_demo", tmp_path)
    test = next(p for p in loaded if p.split == "test" and p.keys["seed"] == 1)
    wrong = test.proba.copy()
    right = wrong.argmax(1) == test.y_true
    wrong[np.flatnonzero(right)[:6]] = np.roll(wrong[np.flatnonzero(right)[:6]], 1, axis=1)  # six images now wrong
    predictions.save([p if p is not test else predictions.Prediction(p.keys, p.split, p.y_true, wrong)
                      for p in loaded], "04_demo", results_dir=tmp_path)  # fmt: skip
    differences = readme.rescored_differences(page, chosen)
    assert len(differences) == 1 and "| fixmatch | steps=250 | cnn | 5 % | default | 2 |" in differences[0]


def test_a_readme_number_without_a_prediction_is_a_difference(tmp_path):
    # break: keep the stored value of a test metric that has no prediction -> an unrescorable README passes
    _saved(tmp_path)
    page, chosen = _readme_from(tmp_path)
    (tmp_path / "04_demo.predictions.npz").unlink()
    differences = readme.rescored_differences(page, chosen)
    assert differences and all("nan" in line.split("rescored:")[1] for line in differences)


def test_predictions_past_the_part_size_go_into_parts_that_load_and_rescore_alike(tmp_path, monkeypatch):
    # break: forget a listed part when loading, or keep a part no longer listed -> runs go missing or linger
    _saved(tmp_path)
    every = predictions.load("04_demo", tmp_path)
    monkeypatch.setattr(predictions, "PART_BYTES", every[0].proba.nbytes)  # one prediction a file
    predictions.save(every, "04_demo", tmp_path)
    assert len(list(tmp_path.glob("04_demo.predictions-*.npz"))) == len(every) - 1 == 3
    loaded = predictions.load("04_demo", tmp_path)
    assert [p.split for p in loaded] == [p.split for p in every]
    assert all(np.array_equal(a.proba, b.proba) for a, b in zip(loaded, every, strict=True))
    checked = results.rescore_all(tmp_path)
    assert len(checked) == 16 and checked["same"].all()

    predictions.save(every[:2], "04_demo", tmp_path)  # fewer runs: the parts of the longer set are removed
    assert len(list(tmp_path.glob("04_demo.predictions-*.npz"))) == 1
    assert len(predictions.load("04_demo", tmp_path)) == 2

    written = predictions.atomic_path

    def interrupted_at_the_main_file(target):
        if str(target).endswith(predictions.SUFFIX):
            raise KeyboardInterrupt
        return written(target)

    monkeypatch.setattr(predictions, "atomic_path", interrupted_at_the_main_file)
    with pytest.raises(KeyboardInterrupt):
        predictions.save(every, "04_demo", tmp_path)
    assert len(predictions.load("04_demo", tmp_path)) == 2  # the set before stands whole
    monkeypatch.undo()
    for part in tmp_path.glob("04_demo.predictions-*.npz"):
        part.unlink()
    with pytest.raises(ValueError, match=r"04_demo\.predictions-.*is damaged.*rerun notebooks/04_demo\.ipynb"):
        predictions.load("04_demo", tmp_path)

    monkeypatch.setattr(predictions, "PART_BYTES", every[0].proba.nbytes)
    predictions.save(every, "04_demo", tmp_path)
    (tmp_path / "04_demo.predictions.npz").unlink()  # parts no file lists: nothing can load them
    predictions.remove_unlisted_parts("04_demo", tmp_path)
    assert not list(tmp_path.glob("04_demo.predictions*"))
