"""``label_images`` on Ray Data: the shards still to label become a dataset, an actor pool
of ``replicas`` model replicas (each compiling its own predictor from a ``PredictorSpec``)
writes them with the local path's own ``write_shard``, so the folder ends exactly as a
local run leaves it (same manifest, same shards, same summary) and either can resume the
other's work."""

from __future__ import annotations

import os
import time
from pathlib import Path

import numpy as np

from bloodssl.deploy.predictor import check_manifest, is_finished, manifest_of, shard_path, summarise, write_shard
from bloodssl.deploy.sources import ImageSource
from bloodssl.deploy.spec import PredictorSpec
from bloodssl.scale.cluster import ray_session


class ShardWriter:
    """A Ray Data actor: one model replica that labels the shards it is handed."""

    def __init__(self, spec: PredictorSpec, source: ImageSource, out_dir: str, shard_size: int):
        self.predictor = spec.build()
        self.source, self.out_dir, self.shard_size = source, Path(out_dir), shard_size

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        counts = []
        for shard in batch["shard"].tolist():
            images = self.source.read(shard * self.shard_size, (shard + 1) * self.shard_size)
            counts.append(write_shard(self.predictor, images, self.out_dir, shard))
        return {key: np.array([c[key] for c in counts]) for key in ("shard", "images", "errors")}


def label_images_on_ray(
    spec: PredictorSpec,
    source: ImageSource,
    out_dir: str | os.PathLike,
    shard_size: int = 16_384,
    replicas: int = 2,
    cpus_per_replica: float = 1,
    address: str | None = None,
) -> dict:
    """Label ``source`` into ``out_dir`` with ``replicas`` actors of ``cpus_per_replica``
    CPUs each, on a local Ray (``address=None``, as many CPUs as the replicas take) or a
    cluster; returns the summary of ``label_images``. The spec's ``threads`` should equal
    ``cpus_per_replica`` (Ray gives each actor that many CPUs). On a cluster, ``out_dir`` and
    the spec's files must be on a file system every node mounts at the same path."""
    import ray

    out_dir = Path(out_dir).resolve()  # the actors write here: on a cluster, a folder every node shares
    out_dir.mkdir(parents=True, exist_ok=True)
    manifest = manifest_of(spec.build(), source, shard_size)
    check_manifest(out_dir, manifest)
    n_shards = -(-len(source) // shard_size)
    todo = [s for s in range(n_shards) if not is_finished(shard_path(out_dir, s))]
    start = time.perf_counter()
    labelled = 0
    with ray_session(address, num_cpus=int(np.ceil(replicas * cpus_per_replica))):
        if todo:
            shards = ray.data.from_items([{"shard": s} for s in todo])
            counts = shards.map_batches(
                ShardWriter, fn_constructor_kwargs={"spec": spec, "source": source, "out_dir": str(out_dir),
                                                    "shard_size": shard_size},
                batch_size=1, concurrency=replicas, num_cpus=cpus_per_replica,
            ).take_all()  # fmt: skip
            labelled = sum(int(c["images"]) for c in counts)
    return summarise(out_dir, n_shards, labelled, time.perf_counter() - start)
