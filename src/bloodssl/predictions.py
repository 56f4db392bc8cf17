"""Per-image predictions of every run, kept beside its results so that any metric can be
recomputed without retraining: ``reports/results/<stem>.predictions.npz``.

A prediction is one run's probabilities for one evaluated split, keyed like its rows in
the results table (``KEYS``: method, model, label fraction, seed, profile, params, round).
``rescore`` recomputes every accuracy, macro-F1, balanced accuracy and AUC of a results
table from these files and reports each difference: ``python -m bloodssl.results rescore``.

The probabilities are stored as the float32 the networks compute, compressed: float16 (or
float16 log-probabilities) would halve the file but moved a test accuracy by one image and an
AUC by 1e-5 in the tests, where two classes were nearly tied; ``rescore`` must reproduce the
README to its last digit. Their four bytes are stored as four planes (every value's first byte,
then every second...), the byte shuffle of HDF5 and Blosc written in numpy, so that deflate sees
the alike exponent bytes side by side: a tenth smaller for notebook 07's networks, and exact. A
prediction of hard labels (``of_labels``: one-hot rows) is stored as its labels, one small
integer an image instead of a row of float32. More than ``PART_BYTES`` of probabilities are
written as parts, so that no file passes 5 MiB in the repository's history.
"""

from __future__ import annotations

import hashlib
import io
import json
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from bloodssl import paths
from bloodssl.core.evaluate import METRICS, Evaluation, score
from bloodssl.core.io import atomic_path

KEYS = ("method", "model", "label_fraction", "seed", "profile", "params", "round")
#: the metrics ``rescore`` recomputes from a prediction
RESCORED = METRICS
#: how far a rescored metric may be from the stored one: a tenth of the last digit the
#: README prints (0.01 % = 1e-4), far above float noise
TOLERANCE = 1e-5
SUFFIX = ".predictions.npz"
#: how a part's file name goes on from the stem (``<stem>.predictions-<md5>.npz``)
PART = ".predictions-"
#: the most bytes of float32 probabilities one file holds (compressed, about five sixths of it):
#: past them ``save`` writes parts, so that every file stays under 5 MiB
PART_BYTES = 4 * 2**20


@dataclass(frozen=True)
class Prediction:
    """One run's probabilities (rows: images of ``split`` in order, columns: classes) and the true
    labels; a ``subset`` also knows the ``whole`` prediction it is the ``rows`` of."""

    keys: dict
    split: str
    y_true: np.ndarray
    proba: np.ndarray
    whole: Prediction | None = None
    rows: np.ndarray | None = None


def run_keys(method: str, model: str, label_fraction: float, seed: int, profile: str,
             params: Mapping | str | None = None, round: float | None = None, **_) -> dict:  # fmt: skip
    """The ``KEYS`` of a run as its results rows hold them (params as sorted JSON, round NaN
    for a final result); other keyword arguments (``n_labels``, ``wall_seconds``...) are ignored."""
    text = params if isinstance(params, str) else json.dumps(dict(params or {}), sort_keys=True, separators=(",", ":"))
    return dict(method=method, model=model, label_fraction=float(label_fraction), seed=int(seed), profile=profile,
                params=text, round=float("nan") if round is None else float(round))  # fmt: skip


def of(evaluation: Evaluation, split: str, **keys) -> Prediction:
    """The prediction behind ``evaluation`` (from ``evaluate``), keyed by the run's ``keys``."""
    if evaluation.proba is None or evaluation.y_true is None:
        raise ValueError("this Evaluation keeps no probabilities; build it with bloodssl.core.evaluate.evaluate")
    return Prediction(run_keys(**keys), split, np.asarray(evaluation.y_true), np.asarray(evaluation.proba))


def of_labels(y_true: np.ndarray, y_pred: np.ndarray, n_classes: int, split: str, **keys) -> Prediction:
    """A prediction of hard labels (a method without probabilities): one-hot rows."""
    proba = np.eye(n_classes, dtype=np.float32)[np.asarray(y_pred)]
    return Prediction(run_keys(**keys), split, np.asarray(y_true), proba)


def subset(whole: Prediction, rows: np.ndarray, split: str, **keys) -> Prediction:
    """The ``rows`` of ``whole`` as the prediction of ``split`` (a test split without its
    duplicates), keyed by ``keys``: ``save`` stores the row numbers into ``whole``'s copy, not a
    second copy of the probabilities."""
    rows = np.asarray(rows, dtype=np.int64)
    if rows.ndim != 1 or (len(rows) and (rows.min() < 0 or rows.max() >= len(whole.y_true))):
        raise ValueError(f"rows of {split} must be row numbers of the {len(whole.y_true)} images of {whole.split}")
    return Prediction(run_keys(**keys), split, whole.y_true[rows], whole.proba[rows], whole=whole, rows=rows)


def _check(prediction: Prediction) -> None:
    if prediction.proba.ndim != 2 or len(prediction.proba) != len(prediction.y_true):
        raise ValueError(f"{prediction.keys['method']} ({prediction.split}): probabilities of shape "
                         f"{prediction.proba.shape} for {len(prediction.y_true)} labels")  # fmt: skip
    if not np.isfinite(prediction.proba).all():
        raise ValueError(f"{prediction.keys['method']} ({prediction.split}, seed {prediction.keys['seed']}) "
                         "predicted NaN or infinite probabilities; the run diverged or its checkpoint is damaged: "
                         "retrain it")  # fmt: skip


class _Blocks:
    """Arrays laid one after another, each distinct content once: where each one lies."""

    def __init__(self) -> None:
        self.where: dict[bytes, tuple[int, int]] = {}
        self.arrays: list[tuple[np.ndarray, ...]] = []
        self.size = 0

    def place(self, *arrays: np.ndarray) -> tuple[int, int]:
        """(start, stop) of ``arrays`` (of one length), stored unless the same content already is."""
        content = hashlib.md5(b"".join(array.tobytes() for array in arrays)).digest()
        if content not in self.where:
            self.where[content] = (self.size, self.size + len(arrays[0]))
            self.arrays.append(arrays)
            self.size += len(arrays[0])
        return self.where[content]


def save(predictions: Iterable[Prediction], stem: str, results_dir: Path | None = None) -> Path:
    """Write ``<stem>.predictions.npz`` atomically (every prediction checked finite, a run
    given twice kept once); return its path. Identical arrays are stored once and shared by
    the runs that gave them: every method of a fraction and seed starts from the same
    round-0 network, and a run's last round is its final result. A ``subset`` is stored as
    its row numbers into its whole prediction's copy. Past ``PART_BYTES`` of probabilities
    the runs go on into parts, files of the same format named by their content
    (``<stem>.predictions-<md5>.npz``) and listed in the main file, which is written last:
    an interrupted save leaves the previous set whole, and parts no longer listed are removed
    once the new main file is in place."""
    unique: dict[tuple, Prediction] = {}
    for prediction in predictions:
        unique.setdefault(_key(prediction.keys, prediction.split), prediction)
    predictions = list(unique.values())
    for prediction in predictions:
        _check(prediction)
        if prediction.whole is not None:
            _check(prediction.whole)
    widths = {p.proba.shape[1] for p in predictions}
    if len(widths) > 1:
        raise ValueError(f"the predictions of {stem} have {sorted(widths)} classes; one notebook has one dataset")
    width = widths.pop() if widths else 0
    folder = Path(results_dir or paths.RESULTS)
    first, *rest = _parts(predictions)
    parts = []
    for part in rest:
        content = _archive(part, width, [])
        parts.append(f"{stem}{PART}{hashlib.md5(content).hexdigest()[:16]}.npz")
        with atomic_path(folder / parts[-1]) as tmp:
            tmp.write_bytes(content)
    target = folder / f"{stem}{SUFFIX}"
    with atomic_path(target) as tmp:
        tmp.write_bytes(_archive(first, width, parts))
    remove_unlisted_parts(stem, folder)
    return target


def listed_parts(stem: str, folder: Path) -> set[str]:
    """The names of the parts that ``stem``'s predictions file in ``folder`` lists (none when
    there is no such file); a damaged file raises ``ValueError`` naming it."""
    main = Path(folder) / f"{stem}{SUFFIX}"
    return set(_read_parts(main, stem)) if main.is_file() else set()


def remove_unlisted_parts(stem: str, folder: Path, listed: set[str] | None = None) -> None:
    """Remove the parts of ``stem`` in ``folder`` that are not ``listed`` (by default those its
    predictions file lists): an earlier save's, or every part when there is no such file
    (nothing can load them)."""
    folder = Path(folder)
    listed = listed_parts(stem, folder) if listed is None else listed
    for part in folder.glob(f"{stem}{PART}*.npz"):
        if part.name not in listed:
            part.unlink()


def _parts(predictions: list[Prediction]) -> list[list[Prediction]]:
    """``predictions`` in order, cut where the next would take a part past ``PART_BYTES`` of
    probabilities (one part at least, one prediction a part at least)."""
    parts, size = [[]], 0
    for prediction in predictions:
        nbytes = (prediction.whole or prediction).proba.nbytes
        if parts[-1] and size + nbytes > PART_BYTES:
            parts, size = [*parts, []], 0
        parts[-1].append(prediction)
        size += nbytes
    return parts


def _archive(predictions: list[Prediction], width: int, parts: list[str]) -> bytes:
    """The bytes of one file of ``predictions`` (``parts``: the files holding the rest)."""
    blocks, hard_blocks, row_blocks, runs = _Blocks(), _Blocks(), _Blocks(), []
    for p in predictions:
        whole = p.whole or p
        proba, y_true = whole.proba.astype(np.float32), whole.y_true.astype(np.int16)
        labels = proba.argmax(axis=1).astype(np.int16) if len(proba) else np.zeros(0, np.int16)
        hard = np.array_equal(proba, np.eye(width, dtype=np.float32)[labels])  # one-hot: its labels say it all
        start, stop = hard_blocks.place(labels, y_true) if hard else blocks.place(proba, y_true)
        runs.append({**p.keys, "split": p.split, "start": start, "stop": stop, **({"hard": True} if hard else {})})
        if p.rows is not None:
            runs[-1]["rows_start"], runs[-1]["rows_stop"] = row_blocks.place(p.rows.astype(np.int32))
    arrays = {
        "proba_bytes": byte_planes(_joined(blocks, 0, np.zeros((0, width), np.float32))),
        "y_true": _joined(blocks, 1, np.zeros(0, np.int16)),
        "hard_labels": _joined(hard_blocks, 0, np.zeros(0, np.int16)),
        "hard_true": _joined(hard_blocks, 1, np.zeros(0, np.int16)),
        "rows": _joined(row_blocks, 0, np.zeros(0, np.int32)),
    }
    buffer = io.BytesIO()
    np.savez_compressed(buffer, runs=np.array(json.dumps(runs)), classes=np.array(width),
                        parts=np.array(json.dumps(parts)), **arrays)  # fmt: skip
    return buffer.getvalue()


def byte_planes(values: np.ndarray) -> np.ndarray:
    """The bytes of float32 ``values`` (little-endian) as planes: shape ``(4, *values.shape)``, uint8."""
    planes = np.ascontiguousarray(values, dtype="<f4").view(np.uint8).reshape(*values.shape, 4)
    return np.ascontiguousarray(np.moveaxis(planes, -1, 0))


def from_byte_planes(planes: np.ndarray) -> np.ndarray:
    """The float32 values whose ``byte_planes`` are ``planes``."""
    if planes.dtype != np.uint8 or planes.ndim < 1 or planes.shape[0] != 4:
        raise ValueError(f"byte planes must be uint8 of shape (4, ...), got {planes.dtype} {planes.shape}")
    return np.ascontiguousarray(np.moveaxis(planes, 0, -1)).view("<f4")[..., 0].astype(np.float32)


def _joined(blocks: _Blocks, position: int, empty: np.ndarray) -> np.ndarray:
    """The ``position``-th array of every block of ``blocks``, one after another (``empty`` if none)."""
    return np.concatenate([arrays[position] for arrays in blocks.arrays]) if blocks.arrays else empty


def load(stem: str, results_dir: Path | None = None) -> list[Prediction]:
    """The predictions ``save`` wrote for ``stem``, its parts included; a missing or damaged
    file says what to do."""
    folder = Path(results_dir or paths.RESULTS)
    path = folder / f"{stem}{SUFFIX}"
    if not path.is_file():
        raise FileNotFoundError(f"{path} does not exist; rerun notebooks/{stem}.ipynb to record its predictions")
    loaded, parts = _read(path, stem)
    for part in parts:
        loaded += _read(folder / part, stem)[0]
    return loaded


def _damaged(path: Path, stem: str, error: Exception) -> ValueError:
    return ValueError(f"{path} is damaged ({type(error).__name__}: {error}); rerun notebooks/{stem}.ipynb")


def _listed(data: Mapping) -> list[str]:
    """The part names an open predictions file lists (files before parts list none)."""
    return json.loads(str(data["parts"])) if "parts" in data else []


def _read_parts(path: Path, stem: str) -> list[str]:
    """The names of the parts the predictions file at ``path`` lists (none before parts existed)."""
    try:
        with np.load(path, allow_pickle=False) as data:
            return _listed(data)
    except Exception as error:  # noqa: BLE001 - numpy and zipfile raise several kinds for a damaged file
        raise _damaged(path, stem, error) from error


def _read(path: Path, stem: str) -> tuple[list[Prediction], list[str]]:
    """The predictions of one file and the names of the parts it lists."""
    try:
        with np.load(path, allow_pickle=False) as data:
            runs, y_true = json.loads(str(data["runs"])), data["y_true"]
            # files before byte planes stored the float32 themselves
            proba = from_byte_planes(data["proba_bytes"]) if "proba_bytes" in data.files else data["proba"]
            # files before subsets had no rows, files before hard labels no hard_*: empty arrays read them
            rows, hard_labels, hard_true = (data[name] if name in data.files else np.zeros(0, np.int16)
                                            for name in ("rows", "hard_labels", "hard_true"))  # fmt: skip
            width = int(data["classes"]) if "classes" in data.files else proba.shape[1]
            parts = _listed(data)
    except Exception as error:  # noqa: BLE001 - numpy and zipfile raise several kinds for a damaged file
        raise _damaged(path, stem, error) from error
    out = []
    for run in runs:
        start, stop, split = run.pop("start"), run.pop("stop"), run.pop("split")
        kept = rows[run.pop("rows_start") : run.pop("rows_stop")] if "rows_start" in run else slice(None)
        run["round"] = float("nan") if run["round"] is None else run["round"]
        if run.pop("hard", False):
            truth, scores = hard_true[start:stop], np.eye(width, dtype=np.float32)[hard_labels[start:stop]]
        else:
            truth, scores = y_true[start:stop], proba[start:stop]
        out.append(Prediction(run, split, truth[kept].astype(np.int64), scores[kept]))
    return out, parts


def _key(keys: Mapping, split: str) -> tuple:
    round_ = keys["round"]
    return (keys["method"], keys["model"], float(keys["label_fraction"]), int(keys["seed"]), keys["profile"],
            keys["params"], -1.0 if round_ is None or math.isnan(round_) else float(round_), split)  # fmt: skip


def rescore(table: pd.DataFrame, predictions: Iterable[Prediction]) -> pd.DataFrame:
    """Every ``RESCORED`` row of a results ``table`` next to the value recomputed from its
    prediction: columns ``stored``, ``rescored``, ``difference`` and ``same`` (equal to the
    ``TOLERANCE``); a row without a prediction has NaN ``rescored`` and ``same`` False. Only
    the metrics the table holds are computed, each once per distinct prediction (runs that
    share their probabilities, such as a method's last round and its final result, share it)."""
    found = {_key(prediction.keys, prediction.split): prediction for prediction in predictions}
    digests: dict[tuple, bytes] = {}
    scores: dict[tuple[bytes, str], float] = {}
    out = []
    for row in table[table["metric"].isin(RESCORED)].to_dict("records"):
        key = _key(row, row["split"])
        prediction = found.get(key)
        value = float("nan")
        if prediction is not None:
            if key not in digests:
                digests[key] = hashlib.md5(prediction.proba.tobytes() + prediction.y_true.tobytes()).digest()
            cached = (digests[key], row["metric"])
            if cached not in scores:
                scores[cached] = score(row["metric"], prediction.y_true, prediction.proba)
            value = scores[cached]
        both_nan = np.isnan(value) and np.isnan(row["value"])
        same = prediction is not None and (abs(value - row["value"]) < TOLERANCE or both_nan)
        out.append({**{k: row[k] for k in (*KEYS, "split", "metric")}, "stored": row["value"], "rescored": value,
                    "difference": abs(value - row["value"]), "same": bool(same)})  # fmt: skip
    return pd.DataFrame(out, columns=[*KEYS, "split", "metric", "stored", "rescored", "difference", "same"])
