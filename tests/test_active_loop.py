"""The active-learning loop: stop/resume, free reruns, what each round may and may not use."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from conftest import colour_coded

from bloodssl import results
from bloodssl.active import ActiveLoop, FileOracle, LabelsPending, OracleError
from bloodssl.methods.supervised import CNNClassifier
from bloodssl.studies.ssl_active_learning import Run, expand

X, Y = colour_coded(12, noise=60)
VAL = colour_coded(3, seed=1, noise=60)
TEST = colour_coded(3, seed=2, noise=60)
FIRST_OF_EACH_CLASS = np.unique(Y, return_index=True)[1]
START = np.where(np.isin(np.arange(len(Y)), FIRST_OF_EACH_CLASS), Y, -1)
LEARNER = CNNClassifier(epochs=2, batch_size=32, lr=0.05, min_epoch_samples=64, class_weight="balanced",
                        progress=False, num_threads=1)  # fmt: skip
SETTINGS = dict(strategy="margin", budget=8, rounds=2, threshold=0.5, finetune={"epochs": 1}, progress=False)


def fit(loop: ActiveLoop, report=TEST) -> ActiveLoop:
    return loop.fit(X, START, eval_set=VAL, report_set=report, y_true=Y)


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory) -> ActiveLoop:
    return fit(ActiveLoop(LEARNER, state_dir=tmp_path_factory.mktemp("whole"), **SETTINGS))


def summary(loop: ActiveLoop) -> list[tuple]:
    return [(r["round"], r["n_labels"], r["n_pseudo"], r["test"]["accuracy"]) for r in loop.history_]


def test_a_person_can_stop_the_loop_and_resume_it_to_the_same_result(uninterrupted, tmp_path):
    oracle = FileOracle(tmp_path / "labels.csv", n_images=len(X))
    loop = ActiveLoop(LEARNER, oracle=oracle, state_dir=tmp_path / "state", **SETTINGS)
    answered = []
    for _ in range(SETTINGS["rounds"]):
        with pytest.raises(LabelsPending):
            fit(loop)
        asked = pd.read_csv(oracle.request_path)["index"].to_numpy()
        answered += [(i, Y[i]) for i in asked]
        pd.DataFrame(answered, columns=["index", "label"]).to_csv(oracle.path, index=False)
    fit(loop)
    assert summary(loop) == summary(uninterrupted)
    assert all(np.array_equal(loop.queries_[r], uninterrupted.queries_[r]) for r in (1, 2))
    assert np.allclose(loop.predict_proba(TEST[0]), uninterrupted.predict_proba(TEST[0]), atol=1e-6)


def test_a_finished_loop_reruns_without_training(uninterrupted, monkeypatch):
    monkeypatch.setattr(CNNClassifier, "_train_epoch", lambda *a: pytest.fail("trained again"))
    again = fit(ActiveLoop(LEARNER, state_dir=uninterrupted.state_dir, **SETTINGS))
    assert summary(again) == summary(uninterrupted)
    assert np.allclose(again.predict_proba(TEST[0]), uninterrupted.predict_proba(TEST[0]), atol=1e-6)


def test_each_round_adds_the_budget_and_never_pseudo_labels_its_queries(uninterrupted):
    history = uninterrupted.history_
    assert [r["n_labels"] for r in history] == [8, 16, 24]
    for record in history[1:]:
        assert len(record["queried"]) == SETTINGS["budget"] and record["n_pseudo"] > 0
        assert not set(record["queried"]) & set(record["pseudo"])
        assert (uninterrupted.labels_[record["queried"]] == Y[record["queried"]]).all()
        assert not set(record["pseudo"]) & set(np.flatnonzero(START >= 0))
        assert 0 <= record["pseudo_accuracy"] <= 1 and "accuracy" in record["test"]


def test_the_test_split_only_reports(uninterrupted):
    shuffled = (TEST[0], np.roll(TEST[1], 5))
    blind = fit(ActiveLoop(LEARNER, **SETTINGS), report=shuffled)
    assert all(np.array_equal(blind.queries_[r], uninterrupted.queries_[r]) for r in (1, 2))
    assert [r["n_pseudo"] for r in blind.history_] == [r["n_pseudo"] for r in uninterrupted.history_]
    assert np.allclose(blind.predict_proba(TEST[0]), uninterrupted.predict_proba(TEST[0]), atol=1e-6)


def test_bald_runs_on_the_dihedral_views():
    loop = fit(ActiveLoop(LEARNER, **{**SETTINGS, "strategy": "bald", "rounds": 1, "threshold": None}))
    assert len(loop.queries_[1]) == SETTINGS["budget"] and loop.history_[1]["n_pseudo"] == 0


def test_a_state_written_for_other_settings_is_not_reused(uninterrupted):
    with pytest.warns(UserWarning, match="written for other parameters or data"):
        fit(ActiveLoop(LEARNER, state_dir=uninterrupted.state_dir, **{**SETTINGS, "rounds": 0, "budget": 4}))


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"budget": 0, "threshold": None}, "a round adds nothing"),
        ({"strategy": "closest"}, "unknown query strategy 'closest'"),
        ({"rounds": -1}, "rounds and budget must be >= 0"),
    ],
)
def test_bad_settings_are_named(settings, message):
    with pytest.raises(ValueError, match=message):
        fit(ActiveLoop(LEARNER, **{**SETTINGS, **settings}))


def test_queries_need_an_oracle():
    with pytest.raises(ValueError, match="pass y_true= \\(simulated oracle\\) or oracle=FileOracle"):
        ActiveLoop(LEARNER, **SETTINGS).fit(X, START)


def test_settings_and_rounds_are_columns_and_expand_into_their_own():
    runs = [Run("ssl_al", 0.01, 0, "margin", 40, 0.97, None), Run("ssl", 0.01, 0, None, 0, 0.9, None),
            Run("baseline", 0.02, 0, None, 0, None, None)]  # fmt: skip
    rows = [results.rows({"accuracy": 0.5}, method=run.arm, round=r, params=run.params(), model="cnn",
                         label_fraction=run.fraction, n_labels=1, seed=0, split="test", wall_seconds=1.0,
                         profile="smoke")[0] for run, r in zip(runs, (2, 1, 0), strict=True)]  # fmt: skip
    table = expand(results.frame(rows))
    assert table["method"].tolist() == table["arm"].tolist() == ["ssl_al", "ssl", "baseline"]
    assert table["round"].tolist() == [2, 1, 0] and table["budget"].tolist() == [40, 0, 0]
    assert table["strategy"].iloc[0] == "margin" and table["threshold"].iloc[1] == 0.9
    assert table["params"].iloc[2] == "{}" and np.isnan(table["threshold"].iloc[2])


def test_human_share_repeats_the_people_s_labels_among_the_pseudo_labels():
    loop = fit(ActiveLoop(LEARNER, **{**SETTINGS, "rounds": 1, "human_share": 0.5}))
    n_human, n_pseudo = loop.history_[1]["n_labels"], loop.history_[1]["n_pseudo"]
    assert n_pseudo > n_human  # otherwise nothing is repeated
    assert loop.learner_.n_labels_ >= 2 * n_pseudo  # people's labels are at least half of what it trained on


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ('{"signature": "0a1b", "rounds": [{"round": 0, "n_lab', "is not a readable loop state \\(truncated"),
        ("", "is not a readable loop state \\(truncated or not JSON"),
        ("[1, 2]", "is JSON but not a loop state: .* found a JSON list"),
        ('{"signature": "0a1b", "rounds": 3}', "is JSON but not a loop state: .* found the keys \\['rounds', 'sig"),
    ],
    ids=["truncated", "empty", "a_list", "missing_keys"],
)
def test_a_damaged_state_is_named_and_kept_for_the_person_to_decide(tmp_path, monkeypatch, content, message):
    # break: json.loads the state unguarded (or start afresh over it) -> a raw JSONDecodeError/AttributeError, or the
    # rounds people labelled are overwritten
    monkeypatch.setattr(CNNClassifier, "_train_epoch", lambda *a: pytest.fail("trained over a damaged state"))
    (tmp_path / "state.json").write_text(content)
    fix = "it is not overwritten. Fix: restore it from a backup, or delete .*state.json to start the loop afresh"
    with pytest.raises(OracleError, match=f"(?s)state.json {message}.*{fix}"):
        fit(ActiveLoop(LEARNER, state_dir=tmp_path, **SETTINGS))
    assert (tmp_path / "state.json").read_text() == content
    assert sorted(p.name for p in tmp_path.iterdir()) == ["state.json"]  # nothing written next to it either
