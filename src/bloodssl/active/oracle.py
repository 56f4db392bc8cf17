"""Oracles: who answers the loop's queries.

``SimulatedOracle`` reads the true training labels (the default for experiments).
``FileOracle`` reads labels a person wrote into a CSV file (``index,label``: the image's
row in the training split and its class, 0..7). When the file is missing or lacks some
queried images, it writes the list of images to label next to it and raises
``LabelsPending``; the loop has saved its state by then, so running it again after the
labels are in resumes where it stopped.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd

from bloodssl.core.io import atomic_path
from bloodssl.data import N_CLASSES, SHORT_NAMES


class OracleError(ValueError):
    """The labels given for the queried images are unusable."""


class LabelsPending(OracleError):
    """Some queried images have no label yet; label them and run the loop again."""


class SimulatedOracle:
    """Answers every query with the true label."""

    def __init__(self, labels: np.ndarray):
        self.labels = np.asarray(labels).reshape(-1).astype(np.int64)

    def request(self, indices: np.ndarray, proba: np.ndarray | None = None) -> None:
        """Nothing to ask: the labels are known."""

    def label(self, indices: np.ndarray) -> np.ndarray:
        """The true labels of the images at ``indices``."""
        return self.labels[np.asarray(indices, dtype=np.int64)]

    def __repr__(self) -> str:
        return f"SimulatedOracle(<{len(self.labels)} labels>)"


class FileOracle:
    """Answers queries from ``path``, a CSV with columns ``index`` and ``label``.

    ``n_images`` is the size of the pool (the training split), so an index outside it is
    caught; labels must be 0..``n_classes - 1``. Rows for images that were not asked
    about are allowed (and ignored).
    """

    def __init__(self, path: str | os.PathLike, n_images: int, n_classes: int = N_CLASSES):
        self.path = Path(path)
        self.n_images = n_images
        self.n_classes = n_classes

    @property
    def request_path(self) -> Path:
        """Where the list of images to label is written: ``<stem>.request.csv``."""
        return self.path.with_name(f"{self.path.stem}.request.csv")

    def request(self, indices: np.ndarray, proba: np.ndarray | None = None) -> Path:
        """Write the images to label (with the model's guess, if ``proba`` is given)."""
        table = pd.DataFrame({"index": np.asarray(indices, dtype=np.int64)})
        if proba is not None:
            table["model_guess"] = [SHORT_NAMES[c] if self.n_classes == N_CLASSES else c for c in proba.argmax(1)]
            table["model_confidence"] = proba.max(1).round(3)
        table["label"] = ""
        with atomic_path(self.request_path) as tmp:
            table.to_csv(tmp, index=False)
        return self.request_path

    def read(self) -> pd.Series:
        """All labels in the file, as a Series from image index to label."""
        if not self.path.is_file():
            raise LabelsPending(
                f"found no label file at {self.path}; expected a CSV with columns index,label. "
                f"Fix: label the images listed in {self.request_path} (index = row of the training split, "
                f"label = 0..{self.n_classes - 1}), save them as {self.path} and run the loop again."
            )
        table = self._read_csv()
        missing = {"index", "label"} - set(table.columns)
        if missing:
            raise OracleError(f"{self.path} has the columns {list(table.columns)}; expected index and label "
                              "(one row per image). Fix: rename the columns.")  # fmt: skip
        table = table.dropna(subset=["label"])
        for column in ("index", "label"):
            values = pd.to_numeric(table[column], errors="coerce")
            bad = table.loc[values.isna() | (values != values.round()), column]
            if len(bad):
                raise OracleError(f"{self.path}: column {column} holds {bad.iloc[0]!r}, which is not a whole "
                                  f"number. Fix: write integers, e.g. 3,{self.n_classes - 1}.")  # fmt: skip
            table[column] = values.astype(np.int64)
        outside = table.loc[(table["index"] < 0) | (table["index"] >= self.n_images), "index"]
        if len(outside):
            raise OracleError(f"{self.path}: index {outside.iloc[0]} is unknown; the pool has images "
                              f"0..{self.n_images - 1}. Fix: use the indices in {self.request_path}.")  # fmt: skip
        out_of_range = table.loc[(table["label"] < 0) | (table["label"] >= self.n_classes)]
        if len(out_of_range):
            row = out_of_range.iloc[0]
            raise OracleError(f"{self.path}: image {row['index']} has label {row['label']}; expected a class "
                              f"0..{self.n_classes - 1} ({', '.join(SHORT_NAMES)}). Fix the label.")  # fmt: skip
        clashes = table.groupby("index")["label"].nunique()
        if (clashes > 1).any():
            raise OracleError(f"{self.path}: image {clashes[clashes > 1].index[0]} has two different labels. "
                              "Fix: keep one row per image.")  # fmt: skip
        return table.drop_duplicates("index").set_index("index")["label"]

    def _read_csv(self) -> pd.DataFrame:
        """The file as a table, or an ``OracleError`` saying why it is not a CSV (an empty
        file is one that exists, unlike the missing file of ``LabelsPending``)."""
        fix = (f"Fix: save it as a plain-text CSV with columns index,label (a header line, then one row per "
               f"labelled image, e.g. 3,{self.n_classes - 1}) for the images in {self.request_path}.")  # fmt: skip
        try:
            return pd.read_csv(self.path)
        except pd.errors.EmptyDataError as error:
            raise OracleError(f"{self.path} is empty (no header, no rows). {fix}") from error
        except UnicodeDecodeError as error:
            raise OracleError(f"{self.path} is not a text file (byte {error.start} is not UTF-8: is it compressed, "
                              f"a spreadsheet or another format?). {fix}") from error  # fmt: skip
        except pd.errors.ParserError as error:
            raise OracleError(f"{self.path} is not a readable CSV ({str(error).strip()}). {fix}") from error

    def label(self, indices: np.ndarray) -> np.ndarray:
        """The labels of ``indices`` from the file; ``LabelsPending`` until all are there."""
        indices = np.asarray(indices, dtype=np.int64)
        labels = self.read()
        absent = indices[~np.isin(indices, labels.index)]
        if len(absent):
            raise LabelsPending(
                f"{self.path} has no label yet for {len(absent)} of the {len(indices)} queried images "
                f"(e.g. index {', '.join(map(str, absent[:5]))}). Fix: label the images listed in "
                f"{self.request_path} and run the loop again; it resumes from its saved state."
            )
        return labels.loc[indices].to_numpy(np.int64)

    def __repr__(self) -> str:
        return f"FileOracle({str(self.path)!r}, n_images={self.n_images})"
