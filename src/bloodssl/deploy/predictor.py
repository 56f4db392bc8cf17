"""Label a stream of images into Parquet shards: ``BatchPredictor`` turns images into a
predicted class, its calibrated probability, the probability vector, a route (auto-accept
or human review, by confidence) and optionally the embedding; ``label_images`` runs it
over a source shard by shard.

A labelling folder holds ``manifest.json`` (the source, the model and the settings),
``part-<shard>.parquet`` per shard, ``part-<shard>.errors.csv`` where a shard had images
that could not be read, and at the end ``errors.csv`` (all of them) and ``summary.json``.
Each shard is written atomically and a finished one is skipped, so an interrupted run
resumes where it stopped and ends with the files of an uninterrupted one; a folder that
holds another run's labels is refused, never overwritten. One shard is read while the
previous one is predicted, and memory stays that of two shards whatever the stream's length.
"""

from __future__ import annotations

import json
import os
import time
import warnings
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
from tqdm.auto import tqdm

from bloodssl.core.io import atomic_path
from bloodssl.deploy.bundle import Bundle
from bloodssl.deploy.sources import Batch, ImageSource

ACCEPT, REVIEW = "accept", "review"


class Backend(Protocol):
    """Runs a network: uint8 (N, H, W, C) images in, ``(logits, embeddings)`` out."""

    def __call__(self, images: np.ndarray) -> tuple[np.ndarray, np.ndarray]: ...

    def describe(self) -> dict: ...


@dataclass
class BatchPredictor:
    """A backend with the class names, the calibrating ``temperature`` and the confidence
    ``threshold`` at or above which a prediction is accepted without a person looking."""

    backend: Backend
    class_names: Sequence[str]
    temperature: float = 1.0
    threshold: float = 0.9
    embeddings: bool = False
    model_fingerprint: str = ""

    def __post_init__(self):
        if not 0.0 <= self.threshold <= 1.0:
            raise ValueError(f"threshold is a probability in [0, 1], got {self.threshold}")
        if not self.temperature > 0:
            raise ValueError(f"temperature must be positive, got {self.temperature}; 1 keeps the network's own")

    @classmethod
    def from_bundle(cls, bundle: Bundle, backend: Backend, **settings) -> BatchPredictor:
        """The predictor of a saved bundle (its class names and temperature) on ``backend``; an
        exported model made from other weights than the bundle's is refused."""
        exported_from = getattr(backend, "weights", None)
        if exported_from is not None and exported_from != bundle.fingerprint:
            raise ValueError(f"{backend.path} was exported from other weights than this bundle's; export this "
                             "bundle again (python -m bloodssl.deploy export)")  # fmt: skip
        return cls(backend, bundle.class_names, bundle.temperature, model_fingerprint=bundle.fingerprint, **settings)

    def describe(self) -> dict:
        """What the manifest records: equal descriptions, equal labels."""
        settings = {"temperature": self.temperature, "threshold": self.threshold, "embeddings": self.embeddings}
        return {"model": self.model_fingerprint, **self.backend.describe(), "class_names": list(self.class_names),
                **settings}  # fmt: skip

    def predict(self, images: np.ndarray) -> dict[str, np.ndarray]:
        """Calibrated ``probabilities``, the ``label`` and its ``confidence``, the ``route`` and
        (with ``embeddings=True``) the ``embedding`` of each image."""
        logits, features = self.backend(images)
        if logits.shape[1] != len(self.class_names):
            raise ValueError(f"the network gives {logits.shape[1]} scores per image for {len(self.class_names)} "
                             "class names; pair the bundle with its own exported model")  # fmt: skip
        scaled = logits.astype(np.float64) / self.temperature
        scaled -= scaled.max(1, keepdims=True)
        proba = np.exp(scaled)
        proba /= proba.sum(1, keepdims=True)
        confidence = proba.max(1)
        out = {"label": proba.argmax(1), "confidence": confidence.astype(np.float32),
               "route": np.where(confidence >= self.threshold, ACCEPT, REVIEW),
               "probabilities": proba.astype(np.float32)}  # fmt: skip
        if self.embeddings:
            out["embedding"] = features.astype(np.float32)
        return out

    def table(self, batch: Batch) -> pa.Table:
        """One shard's rows: ``id, label, class_name, confidence, route, probabilities[, embedding]``."""
        out = self.predict(batch.images)
        names = np.asarray(self.class_names)
        columns = {"id": pa.array(batch.ids, pa.string()), "label": pa.array(out["label"], pa.int16()),
                   "class_name": pa.array(names[out["label"]], pa.string()).dictionary_encode(),
                   "confidence": pa.array(out["confidence"]),
                   "route": pa.array(out["route"], pa.string()).dictionary_encode(),
                   "probabilities": _fixed_lists(out["probabilities"])}  # fmt: skip
        if self.embeddings:
            columns["embedding"] = _fixed_lists(out["embedding"])
        return pa.table(columns)


def _fixed_lists(matrix: np.ndarray) -> pa.FixedSizeListArray:
    return pa.FixedSizeListArray.from_arrays(pa.array(matrix.reshape(-1)), matrix.shape[1])


def shard_path(out_dir: Path, shard: int) -> Path:
    """The Parquet file of shard number ``shard``."""
    return Path(out_dir) / f"part-{shard:05d}.parquet"


def is_finished(path: Path) -> bool:
    """Whether a shard's file is there and readable (a damaged one is redone, with a warning)."""
    if not path.is_file():
        return False
    try:
        pq.read_metadata(path)
    except Exception as error:  # noqa: BLE001 - pyarrow raises several kinds for a damaged file
        warnings.warn(f"{path} is not a readable Parquet file ({type(error).__name__}); labelling that shard again.",
                      stacklevel=3)  # fmt: skip
        return False
    return True


def write_shard(predictor: BatchPredictor, batch: Batch, out_dir: Path, shard: int) -> dict:
    """Predict one shard and write its file (and its errors first, so a shard whose Parquet
    file exists is complete); returns the shard's counts."""
    errors_path = shard_path(out_dir, shard).with_suffix(".errors.csv")
    if batch.errors:
        with atomic_path(errors_path) as tmp:
            pd.DataFrame(batch.errors, columns=["id", "reason"]).assign(shard=shard).to_csv(tmp, index=False)
    table = predictor.table(batch)
    with atomic_path(shard_path(out_dir, shard)) as tmp:
        pq.write_table(table, tmp)
    return {"shard": shard, "images": len(batch.ids), "errors": len(batch.errors)}


def check_manifest(out_dir: Path, manifest: dict) -> None:
    """Write ``manifest.json``, or check that the one there is this run's; a folder holding
    another run's labels, or shards without a manifest, is refused with what differs."""
    path = Path(out_dir) / "manifest.json"
    if not path.is_file() and any(Path(out_dir).glob("part-*")):
        raise ValueError(f"{out_dir} holds shards but no manifest.json, so nothing says which run wrote them; label "
                         f"into a new folder, or delete {out_dir} to start over")  # fmt: skip
    if path.is_file():
        existing = json.loads(path.read_text())
        if existing != manifest:
            old, new = _flat(existing), _flat(manifest)
            differ = ", ".join(sorted(k for k in old.keys() | new.keys() if old.get(k) != new.get(k)))
            raise ValueError(f"{out_dir} holds the labels of another run (its manifest differs in {differ}); "
                             f"label into a new folder, or delete {out_dir} to start over")  # fmt: skip
        return
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(manifest, indent=2, sort_keys=True))


def _flat(manifest: dict, prefix: str = "") -> dict:
    """``{"predictor": {"threshold": 0.9}}`` as ``{"predictor.threshold": 0.9}``."""
    out = {}
    for key, value in manifest.items():
        out.update(_flat(value, f"{prefix}{key}.") if isinstance(value, dict) else {f"{prefix}{key}": value})
    return out


def manifest_of(predictor: BatchPredictor, source: ImageSource, shard_size: int) -> dict:
    """What a labelling run is: its source, its predictor and its shard size."""
    if shard_size < 1:
        raise ValueError(f"shard_size must be positive, got {shard_size}")
    return {"source": source.describe(), "predictor": predictor.describe(), "shard_size": shard_size}


def label_images(
    predictor: BatchPredictor,
    source: ImageSource,
    out_dir: str | os.PathLike,
    shard_size: int = 16_384,
    progress: bool = True,
    on_shard: Callable[[int], None] | None = None,
) -> dict:
    """Label every image of ``source`` into ``out_dir``, skipping shards already written.

    Returns (and writes as ``summary.json``) the counts of the whole folder and the images/s
    of this call. ``on_shard(shard)`` is called after each shard is written (a progress hook;
    the tests interrupt a run with it)."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    check_manifest(out_dir, manifest_of(predictor, source, shard_size))
    n_shards = -(-len(source) // shard_size)
    todo = [s for s in range(n_shards) if not is_finished(shard_path(out_dir, s))]
    start = time.perf_counter()
    labelled = 0
    bar = tqdm(total=len(source), initial=len(source) - sum(_size(source, s, shard_size) for s in todo),
               unit="img", desc="labelling", disable=not progress)  # fmt: skip
    with ThreadPoolExecutor(max_workers=1) as reader:
        upcoming = reader.submit(source.read, todo[0] * shard_size, (todo[0] + 1) * shard_size) if todo else None
        for i, shard in enumerate(todo):
            batch = upcoming.result()
            if i + 1 < len(todo):
                upcoming = reader.submit(source.read, todo[i + 1] * shard_size, (todo[i + 1] + 1) * shard_size)
            write_shard(predictor, batch, out_dir, shard)
            labelled += len(batch.ids)
            bar.update(len(batch.ids) + len(batch.errors))
            bar.set_postfix(img_s=f"{labelled / (time.perf_counter() - start):.0f}")
            if on_shard is not None:
                on_shard(shard)
    bar.close()
    return summarise(out_dir, n_shards, labelled, time.perf_counter() - start)


def _size(source: ImageSource, shard: int, shard_size: int) -> int:
    return min(len(source), (shard + 1) * shard_size) - shard * shard_size


def summarise(out_dir: Path, n_shards: int, labelled: int, seconds: float) -> dict:
    """Merge the shards' errors into ``errors.csv`` and write ``summary.json``: the folder's
    images, accepted and review counts and errors, and this call's images labelled (unreadable
    ones not counted) and images/s. Counted shard by shard, so memory does not grow with the
    folder."""
    errors = [pd.read_csv(p) for p in sorted(out_dir.glob("part-*.errors.csv"))]
    merged = pd.concat(errors) if errors else pd.DataFrame(columns=["id", "reason", "shard"])
    with atomic_path(out_dir / "errors.csv") as tmp:
        merged.to_csv(tmp, index=False)
    images = accepted = 0
    for shard in range(n_shards):
        routes = pq.read_table(shard_path(out_dir, shard), columns=["route"])["route"].to_numpy()
        images, accepted = images + len(routes), accepted + int(np.sum(routes == ACCEPT))
    summary = {"shards": n_shards, "images": images, "accepted": accepted, "review": images - accepted,
               "errors": len(merged), "labelled_now": labelled, "seconds": seconds,
               "images_per_second": labelled / seconds if labelled else float("nan")}  # fmt: skip
    with atomic_path(out_dir / "summary.json") as tmp:
        tmp.write_text(json.dumps(summary, indent=2))
    return summary
