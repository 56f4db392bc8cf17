"""Query strategies pick what they should, and the file oracle explains what is wrong."""

from __future__ import annotations

import gzip

import numpy as np
import pandas as pd
import pytest

from bloodssl.active import STRATEGIES, FileOracle, LabelsPending, OracleError, get_strategy
from bloodssl.active.strategies import bald_scores

RNG = np.random.default_rng(0)


def confident(n: int, n_classes: int = 4) -> np.ndarray:
    """``n`` rows of confident predictions (0.97 on one class)."""
    proba = np.full((n, n_classes), 0.01)
    proba[np.arange(n), np.arange(n) % n_classes] = 1 - 0.01 * (n_classes - 1)
    return proba


def directions(counts, noise: float = 0.05, seed: int = 0) -> np.ndarray:
    """Points scattered around the unit axes: ``counts[d]`` of them near axis ``d``."""
    rng = np.random.default_rng(seed)
    points = [np.eye(8)[d] + noise * rng.normal(size=(k, 8)) for d, k in enumerate(counts)]
    return np.concatenate(points)


def pick(name: str, proba, embeddings, candidates, budget: int, **params) -> set[int]:
    return set(get_strategy(name, **params)(proba, embeddings, candidates, budget, np.random.default_rng(1)).tolist())


def test_unknown_strategy_lists_the_choices():
    with pytest.raises(ValueError, match="unknown query strategy 'smallest'; choose one of random, least_confidence"):
        get_strategy("smallest")


@pytest.mark.parametrize("name", list(STRATEGIES))
def test_every_strategy_returns_distinct_candidates_within_budget(name):
    proba = RNG.dirichlet(np.ones(4), size=(8, 60))
    embeddings = RNG.normal(size=(60, 8))
    candidates = np.arange(10, 60)
    chosen = get_strategy(name)(proba, embeddings, candidates, 7, np.random.default_rng(0))
    assert len(chosen) == 7 and len(set(chosen.tolist())) == 7 and np.isin(chosen, candidates).all()
    everything = get_strategy(name)(proba, embeddings, candidates, 99, np.random.default_rng(0))
    assert sorted(everything.tolist()) == candidates.tolist()


def test_entropy_picks_the_most_uncertain_rows():
    proba = confident(20)
    proba[[3, 11]] = 0.25  # uniform: maximal entropy
    proba[7] = [0.7, 0.1, 0.1, 0.1]
    assert pick("entropy", proba, None, np.arange(20), 2) == {3, 11}
    assert pick("entropy", proba, None, np.arange(20), 3) == {3, 7, 11}


def test_margin_and_least_confidence_differ_where_they_should():
    proba = confident(10)
    proba[2] = [0.49, 0.49, 0.01, 0.01]  # two classes tie: no margin, top class 0.49
    proba[5] = [0.40, 0.20, 0.20, 0.20]  # lowest top class, clear margin
    assert pick("margin", proba, None, np.arange(10), 1) == {2}
    assert pick("least_confidence", proba, None, np.arange(10), 1) == {5}


def test_bald_prefers_views_that_disagree_over_honest_doubt():
    samples = np.repeat(confident(10)[None], 8, axis=0)
    samples[:, 4] = [0.5, 0.5, 0.0, 0.0]  # every view unsure: aleatoric, no disagreement
    samples[0::2, 6], samples[1::2, 6] = [1.0, 0, 0, 0], [0, 1.0, 0, 0]  # views contradict each other
    assert bald_scores(samples)[6] == pytest.approx(np.log(2), abs=1e-6)
    assert bald_scores(samples)[4] == pytest.approx(0, abs=1e-6)
    assert pick("bald", samples, None, np.arange(10), 1) == {6}


def test_bald_needs_several_stochastic_predictions():
    with pytest.raises(ValueError, match="bald needs several stochastic predictions"):
        get_strategy("bald")(confident(10), None, np.arange(10), 2, np.random.default_rng(0))


def test_coreset_covers_the_far_points_first():
    embeddings = directions([30, 20, 1, 1])  # labelled and candidates near axis 0 and 1; two far points
    labelled = np.arange(30)  # everything near axis 0 is labelled
    candidates = np.setdiff1d(np.arange(len(embeddings)), labelled)
    chosen = pick("coreset", confident(len(embeddings)), embeddings, candidates, 3)
    assert {50, 51} <= chosen  # the lone points on axes 2 and 3
    assert len(chosen & set(range(30, 50))) == 1  # and one for the whole cluster on axis 1


def test_typiclust_picks_typical_images_of_uncovered_clusters():
    embeddings = directions([15, 15, 15], noise=0.05)
    embeddings[[20, 35]] += 0.3 * np.eye(8)[7]  # atypical members of clusters 1 and 2
    labelled = np.array([0])  # cluster 0 is covered
    candidates = np.arange(1, 45)
    chosen = pick("typiclust", confident(45), embeddings, candidates, 2, k=5)
    assert sorted(c // 15 for c in chosen) == [1, 2]
    assert not chosen & {20, 35}
    assert labelled[0] not in chosen


def test_cluster_margin_spreads_a_batch_over_the_uncertain_clusters():
    embeddings = directions([10, 10, 20])
    proba = confident(40)
    proba[:10] = [0.50, 0.48, 0.01, 0.01]  # cluster 0: the most uncertain
    proba[10:20] = [0.55, 0.43, 0.01, 0.01]  # cluster 1: a little less
    candidates = np.arange(40)
    assert all(c < 10 for c in pick("margin", proba, embeddings, candidates, 2))
    chosen = pick("cluster_margin", proba, embeddings, candidates, 2, pool_factor=10)
    assert sorted(c // 10 for c in chosen) == [0, 1]


def test_random_is_reproducible_per_seed_and_random():
    # break: return candidates[:budget] -> every seed picks the same first rows
    picks = [get_strategy("random")(confident(50), None, np.arange(50), 5, np.random.default_rng(s)).tolist()
             for s in (3, 3, 4)]  # fmt: skip
    assert picks[0] == picks[1] and picks[0] != picks[2]
    assert picks[0] != list(range(5))


def test_embedding_strategies_refuse_to_run_without_embeddings():
    with pytest.raises(ValueError, match="coreset needs embeddings of all 10 pool images; got none"):
        get_strategy("coreset")(confident(10), None, np.arange(10), 2, np.random.default_rng(0))


# -- the file oracle -----------------------------------------------------------------------


def write(path, rows) -> None:
    pd.DataFrame(rows, columns=["index", "label"]).to_csv(path, index=False)


def test_file_oracle_returns_the_labels_in_query_order(tmp_path):
    write(tmp_path / "labels.csv", [(5, 2), (9, 7), (1, 0), (3, 3)])
    oracle = FileOracle(tmp_path / "labels.csv", n_images=10)
    assert oracle.label(np.array([9, 1, 5])).tolist() == [7, 0, 2]


def test_file_oracle_without_a_file_asks_for_labels(tmp_path):
    oracle = FileOracle(tmp_path / "labels.csv", n_images=10)
    request = oracle.request(np.array([4, 2]), np.full((2, 8), 1 / 8))
    assert pd.read_csv(request)["index"].tolist() == [4, 2]
    expected = r"found no label file at .*labels.csv; expected a CSV with columns index,label. Fix: label the images"
    with pytest.raises(LabelsPending, match=expected + r" listed in .*labels.request.csv"):
        oracle.label(np.array([4, 2]))


def test_file_oracle_names_the_missing_labels(tmp_path):
    write(tmp_path / "labels.csv", [(4, 1)])
    with pytest.raises(LabelsPending, match="no label yet for 1 of the 2 queried images \\(e.g. index 2\\)"):
        FileOracle(tmp_path / "labels.csv", n_images=10).label(np.array([4, 2]))


def test_file_oracle_rejects_an_unknown_index(tmp_path):
    write(tmp_path / "labels.csv", [(4, 1), (12, 3)])
    with pytest.raises(OracleError, match=r"index 12 is unknown; the pool has images 0..9"):
        FileOracle(tmp_path / "labels.csv", n_images=10).label(np.array([4]))


@pytest.mark.parametrize("label", [8, -1])
def test_file_oracle_rejects_a_label_out_of_range(tmp_path, label):
    write(tmp_path / "labels.csv", [(4, 1), (2, label)])
    with pytest.raises(OracleError, match=rf"image 2 has label {label}; expected a class 0..7"):
        FileOracle(tmp_path / "labels.csv", n_images=10).label(np.array([4, 2]))


def test_file_oracle_rejects_wrong_columns_and_non_numbers(tmp_path):
    pd.DataFrame({"image": [1], "class": [2]}).to_csv(tmp_path / "labels.csv", index=False)
    with pytest.raises(OracleError, match="expected index and label"):
        FileOracle(tmp_path / "labels.csv", n_images=10).label(np.array([1]))
    write(tmp_path / "labels.csv", [(1, "neutrophil")])
    with pytest.raises(OracleError, match="column label holds 'neutrophil', which is not a whole number"):
        FileOracle(tmp_path / "labels.csv", n_images=10).label(np.array([1]))


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", r"labels.csv is empty \(no header, no rows\)"),
        (gzip.compress(b"index,label\n1,2\n", mtime=0), r"labels.csv is not a text file \(byte 1 is not UTF-8"),
        (np.random.default_rng(0).bytes(256), r"labels.csv is not a text file"),
        (b"index,label\n1,2\n3,4,5\n", r"labels.csv is not a readable CSV \(.*Expected 2 fields"),
    ],
    ids=["empty", "gzip", "random_bytes", "ragged_rows"],
)
def test_file_oracle_names_an_empty_or_binary_file_and_the_fix(tmp_path, content, message):
    # break: call pd.read_csv without catching its errors -> EmptyDataError, UnicodeDecodeError or ParserError
    (tmp_path / "labels.csv").write_bytes(content)
    oracle = FileOracle(tmp_path / "labels.csv", n_images=10)
    fix = r".*Fix: save it as a plain-text CSV with columns index,label"
    with pytest.raises(OracleError, match=message + fix) as info:
        oracle.label(np.array([1]))
    assert not isinstance(info.value, LabelsPending)  # the file is there: nothing is pending, it is unusable
