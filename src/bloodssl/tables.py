"""Results tables as text: the README's and the notebooks' tables of mean ± std metrics, wall
time and images/s per run (``results_table``, ``cost_table``), and those particular to one
notebook's results (labelling runs, accuracy against cost, training-only runs), rendered as
GitHub markdown without pulling in ``tabulate``."""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd

from bloodssl import results
from bloodssl.studies import architectures

#: metric -> (column title, scale, digits) of the README's tables, in column order
HEADLINE_METRICS = {
    "accuracy": ("accuracy (%)", 100.0, 2),
    "macro_f1": ("macro-F1 (%)", 100.0, 2),
    "auc": ("AUC (%)", 100.0, 2),
    "ari": ("ARI", 1.0, 3),
    "nmi": ("NMI", 1.0, 3),
    "silhouette": ("silhouette", 1.0, 3),
}
#: metric -> (column title, format) of the labelling runs' table (split ``stream``, notebook 08)
STREAM_METRICS = {
    "labelled_images": ("images", "{:,.0f}"),
    "labelled_images_per_second": ("images/s", "{:,.0f}"),
    "peak_rss_mib": ("peak memory (MiB)", "{:,.0f}"),
    "identical_to_local": ("identical to local", "{:.0%}"),
}


def markdown_table(table: pd.DataFrame) -> str:
    """A pandas table as GitHub markdown (without pulling in ``tabulate``)."""
    header = "| " + " | ".join(map(str, table.columns)) + " |"
    rule = "| " + " | ".join("---" for _ in table.columns) + " |"
    body = ["| " + " | ".join(map(str, row)) + " |" for row in table.itertuples(index=False)]
    return "\n".join([header, rule, *body])


def duration(seconds: float) -> str:
    """Seconds as ``12.3 s`` below a minute, else ``4.5 min``; blank for NaN."""
    if pd.isna(seconds):
        return ""
    if seconds < 0.05:
        return "< 0.1 s"
    return f"{seconds:.1f} s" if seconds < 60 else f"{seconds / 60:.1f} min"


def cost_table(
    table: pd.DataFrame, keys: Sequence[str], split: str = "test", speeds: Sequence[str] = ("train",)
) -> pd.DataFrame:
    """What the runs behind each ``keys`` group cost: mean wall time of a run (the
    ``wall_seconds`` of its ``split`` rows, one value per seed) and, for each of ``speeds``
    (``train``, ``inference``) the notebook measured, mean images per second."""
    runs = table[table["split"] == split].drop_duplicates([*keys, "seed"])
    wall = runs.groupby(list(keys), sort=False)["wall_seconds"].mean()
    columns = [wall.map(duration).rename("wall time / run")]
    for stage in speeds:
        speed = table[table["metric"] == f"{stage}_images_per_second"]
        mean = speed.groupby(list(keys), sort=False)["value"].mean().reindex(wall.index)
        if mean.notna().any():
            columns.append(mean.map("{:,.0f}".format, na_action="ignore").rename(f"{stage} images/s"))
    return pd.concat(columns, axis=1).fillna("").reset_index()


def training_only_table(table: pd.DataFrame) -> pd.DataFrame:
    """The cost of runs that predict no test image themselves, such as notebook 02's SimCLR
    encoder (trained without labels; the clustering rows that use it cost seconds): one row
    per method, model and profile with seeds, wall time of a run and train images/s."""
    keys = ["method", "model", "profile"]
    tested = table.loc[table["split"] == "test", keys].drop_duplicates()
    train = table[table["split"] == "train"].merge(tested, on=keys, how="left", indicator=True)
    train = train[train.pop("_merge") == "left_only"]
    if train.empty:
        return pd.DataFrame()
    seeds = train.groupby(keys, sort=False)["seed"].nunique().rename("seeds").reset_index()
    return seeds.merge(cost_table(train, keys, split="train"), on=keys)


def results_table(table: pd.DataFrame) -> pd.DataFrame:
    """Test-split headline metrics as ``mean ± std`` per method, model and label fraction:
    accuracy, macro-F1 and AUC in %, clustering scores (ARI, NMI, silhouette) as fractions;
    then the cost of a run (``cost_table``)."""
    table = results.final(table)
    test = table[(table["split"] == "test") & table["metric"].isin(HEADLINE_METRICS)]
    keys = ["method", "params", "model", "label_fraction", "profile"]
    summary = results.summarize(test, by=(*keys, "metric"))
    summary["text"] = ""
    for metric, (_, scale, digits) in HEADLINE_METRICS.items():
        chosen = summary["metric"] == metric
        if chosen.any():
            summary.loc[chosen, "text"] = results.mean_std(summary[chosen], scale=scale, digits=digits)
    summary["n"] = summary.groupby(keys, sort=False)["n"].transform("max")  # a NaN metric must not split a row
    wide = summary.pivot_table(index=[*keys, "n"], columns="metric",
                               values="text", aggfunc="first", sort=False).reset_index()  # fmt: skip
    cost = cost_table(table, keys)
    wide = wide.merge(cost, on=keys, how="left")
    wide["label_fraction"] = (wide["label_fraction"] * 100).map("{:g} %".format)
    wide["settings"] = wide["params"].map(results.params_text)
    metrics = [m for m in HEADLINE_METRICS if m in wide.columns]
    wide[metrics] = wide[metrics].fillna("")  # a metric a run does not report (labels give no AUC) stays blank
    settings = ["settings"] if wide["settings"].str.len().any() else []
    wide = wide.loc[:, ["method", *settings, "model", "label_fraction", "profile", "n", *metrics,
                        *cost.columns[len(keys) :]]]  # fmt: skip
    return wide.rename(columns={"n": "seeds", "label_fraction": "labels",
                                **{m: label for m, (label, _, _) in HEADLINE_METRICS.items()}})  # fmt: skip


def stream_table(table: pd.DataFrame) -> pd.DataFrame:
    """The labelling runs of a results table (split ``stream``): per run, the ``STREAM_METRICS``
    it measured (mean over seeds) and its wall time; empty when the notebook labelled none."""
    stream = table[(table["split"] == "stream") & table["metric"].isin(STREAM_METRICS)]
    if stream.empty:
        return pd.DataFrame()
    keys = ["method", "params", "model", "profile"]
    wide = stream.pivot_table(index=keys, columns="metric", values="value", aggfunc="mean", sort=False)
    wall = stream.groupby(keys, sort=False)["wall_seconds"].mean().map(duration).rename("wall time")
    wide = wide.join(wall).reset_index()
    for metric, (_, text) in STREAM_METRICS.items():
        if metric in wide:
            wide[metric] = wide[metric].map(text.format, na_action="ignore").fillna("")
    wide["settings"] = wide.pop("params").map(results.params_text)
    columns = ["method", "settings", "model", "profile", *[m for m in STREAM_METRICS if m in wide], "wall time"]
    return wide[columns].rename(columns={m: title for m, (title, _) in STREAM_METRICS.items()})


def cost_section(costs: pd.DataFrame, points: float = 0.5) -> list[str]:
    """Notebook 07's accuracy against cost (``studies.architectures.accuracy_and_cost``) as a
    table, and the fastest architecture within ``points`` validation points of the best."""
    fastest = architectures.fastest_within(costs, points)
    shown = pd.DataFrame({
        "model": costs["model"], "seeds": costs["n"].astype(int),
        "val accuracy (%)": (100 * costs["val_accuracy"]).round(2),
        "test accuracy (%)": results.mean_std(costs.rename(columns={"accuracy": "mean"})),
        "parameters": costs["parameters"].map("{:,.0f}".format),
        "MFLOP / image": costs["mflops_per_image"].round(1),
        "train images/s": costs["train_images_per_second"].round(0).astype(int),
        "inference images/s": costs["inference_images_per_second"].round(0).astype(int),
        **{f"{mode} peak (MiB)": costs[f"{mode}_peak_mib"].round(0) for mode in ("inference", "train")
           if f"{mode}_peak_mib" in costs},
    })  # fmt: skip
    return [f"\nAccuracy against cost (notebook 01's recipe, no TTA; torch fp32 throughput on 2 cores, "
            f"on random weights). The fastest within {points:g} validation points of the best: **{fastest['model']}**, "
            f"{fastest['inference_images_per_second']:,.0f} images/s, test accuracy "
            f"{100 * fastest['accuracy']:.2f} %.\n", markdown_table(shown)]  # fmt: skip
