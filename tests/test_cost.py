"""The cost model of notebook 08: hand-computed costs, review shares and the price table's checks."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from bloodssl.studies.cost import (
    cost_per_million,
    gpu_throughput,
    load_prices,
    plan_table,
    review_cost,
    review_share,
    scale_cpu_throughput,
)


def test_cost_per_million_at_3600_images_per_second_and_one_euro_an_hour():
    # 3600 images/s = 12,960,000 images an hour, so a million take 1 / 12.96 h = 1 / 12.96 EUR
    assert cost_per_million(3600, 1.0) == pytest.approx(1 / 12.96, rel=1e-12)
    assert cost_per_million(1000, 2.0) == pytest.approx(2.0 * 1e6 / 1000 / 3600, rel=1e-12)


def test_cpu_throughput_scales_linearly_with_vcpus():
    assert scale_cpu_throughput(100.0, 2, 8) == pytest.approx(400.0)
    assert scale_cpu_throughput(100.0, 2, 2) == pytest.approx(100.0)


def test_gpu_throughput_is_utilisation_times_peak_over_flops():
    # 0.5 x 10 TFLOPS / 1 GFLOP per image = 5000 images/s
    assert gpu_throughput(1e9, 10.0, 0.5) == pytest.approx(5000.0)
    assert gpu_throughput(1e9, 10.0) == pytest.approx(3000.0)  # the documented default of 0.3
    with pytest.raises(ValueError, match="utilisation"):
        gpu_throughput(1e9, 10.0, 1.5)


@pytest.mark.parametrize("call", [lambda: cost_per_million(100, -1.0), lambda: cost_per_million(0, 1.0),
                                  lambda: scale_cpu_throughput(100, 0, 4)])  # fmt: skip
def test_non_positive_speeds_prices_and_cores_are_refused(call):
    with pytest.raises(ValueError, match="must be positive"):
        call()


def test_plan_table_marks_cpu_rows_measured_and_gpu_rows_estimated_and_prices_them():
    prices = pd.DataFrame({"instance": ["small", "gpu"], "provider": ["x", "x"], "kind": ["cpu", "gpu"],
                           "vcpus": [4, 4], "eur_per_hour": [1.0, 2.0], "fp32_tflops": [np.nan, 10.0]})  # fmt: skip
    table = plan_table(prices, cpu_images_per_second=900, measured_cores=2, flops_per_image=1e9,
                       n_images=3_240_000, utilisation=0.5)  # fmt: skip
    cpu, gpu = table.iloc[0], table.iloc[1]
    assert (cpu["throughput_basis"], gpu["throughput_basis"]) == ("measured", "estimated")
    assert cpu["images_per_second"] == pytest.approx(1800)  # 900 on 2 cores -> 1800 on 4
    assert cpu["hours"] == pytest.approx(0.5)  # 3,240,000 images at 1800/s = 1800 s
    assert cpu["eur"] == pytest.approx(0.5)
    assert gpu["images_per_second"] == pytest.approx(5000)
    assert gpu["eur"] == pytest.approx(3_240_000 / 5000 / 3600 * 2.0)
    assert gpu["eur_per_million"] == pytest.approx(cost_per_million(5000, 2.0))


def test_review_share_on_a_hand_built_split():
    confidences = np.array([0.2, 0.5, 0.6, 0.9, 0.95])
    correct = np.array([False, False, True, True, False])
    table = review_share(confidences, correct, [0.0, 0.55, 0.9, 1.0]).set_index("threshold")
    assert table["review_share"].tolist() == pytest.approx([0.0, 0.4, 0.6, 1.0])
    assert table.loc[0.55, "accepted_accuracy"] == pytest.approx(2 / 3)  # 0.6, 0.9 right; 0.95 wrong
    assert table.loc[0.9, "accepted_accuracy"] == pytest.approx(0.5)  # confidence == t is accepted
    assert table.loc[0.55, "errors_per_million"] == pytest.approx(1e6 / 3)
    assert table.loc[1.0, "n_accepted"] == 0
    assert np.isnan(table.loc[1.0, "accepted_accuracy"])


def test_a_higher_threshold_reviews_more_and_accepts_more_accurately_when_calibrated():
    # ten images at each confidence c, exactly round(10 c) of them right: calibrated by construction
    levels = np.array([0.5, 0.6, 0.7, 0.8, 0.9, 1.0])
    confidences = np.repeat(levels, 10)
    correct = np.concatenate([np.arange(10) < round(10 * c) for c in levels])
    table = review_share(confidences, correct, levels)
    assert (np.diff(table["review_share"]) > 0).all()
    assert (np.diff(table["accepted_accuracy"]) > 0).all()
    assert (np.diff(table["errors_per_million"]) < 0).all()


@pytest.mark.parametrize(
    ("confidences", "correct", "thresholds", "match"),
    [
        ([0.5, 0.6], [True], [0.5], "one length"),
        ([0.5, 1.2], [True, False], [0.5], "confidences must lie in"),
        ([0.5, 0.6], [True, False], [-0.1], "thresholds must lie in"),
        ([0.5, 0.6], [1, 0], [0.5], "boolean mask"),
    ],
)
def test_review_share_refuses_mismatched_or_out_of_range_inputs(confidences, correct, thresholds, match):
    with pytest.raises(ValueError, match=match):
        review_share(np.array(confidences), np.array(correct), np.array(thresholds))


def test_review_cost_is_share_times_images_times_price():
    assert review_cost(0.1, 1_000_000, 0.5) == pytest.approx(50_000.0)
    with pytest.raises(ValueError, match="share"):
        review_cost(1.5, 100, 0.5)


def test_the_shipped_price_table_loads_with_a_source_and_date_on_every_row():
    prices = load_prices()
    assert set(prices["kind"]) == {"cpu", "gpu"}
    assert prices["source"].str.startswith("https://").all()
    assert pd.to_datetime(prices["date"], format="ISO8601").notna().all()
    assert (prices["eur_per_hour"] > 0).all()
    assert (prices.loc[prices["kind"] == "gpu", "fp32_tflops"] > 0).all()


def _write(tmp_path, **changes):
    prices = load_prices().assign(**changes)
    path = tmp_path / "prices.csv"
    prices.to_csv(path, index=False)
    return path


def test_a_negative_price_in_the_csv_is_refused(tmp_path):
    with pytest.raises(ValueError, match="eur_per_hour must be positive"):
        load_prices(_write(tmp_path, eur_per_hour=-1.0))


def test_a_csv_without_a_column_is_refused_naming_it(tmp_path):
    path = tmp_path / "prices.csv"
    load_prices().drop(columns="source").to_csv(path, index=False)
    with pytest.raises(ValueError, match="lacks the columns source"):
        load_prices(path)


def test_a_gpu_row_without_its_fp32_peak_or_a_row_without_a_date_is_refused(tmp_path):
    with pytest.raises(ValueError, match="fp32_tflops"):
        load_prices(_write(tmp_path, fp32_tflops=np.nan))
    with pytest.raises(ValueError, match="source page and the date"):
        load_prices(_write(tmp_path, date=np.nan))
