"""Run a harness's runs (one call of a task per configuration) in this process, or as Ray
tasks on a local Ray or a cluster. The results come back in the configurations' order,
so the caller stores them exactly as a local sweep does: the results store cannot tell
where a run was computed."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from tqdm.auto import tqdm

from bloodssl.scale.cluster import ray_session


def run_sweep(
    task: Callable[..., Any],
    configs: Sequence[Mapping[str, Any]],
    *,
    shared: Mapping[str, Any] | None = None,
    on_ray: bool = False,
    address: str | None = None,
    cpus_per_task: float = 1,
    num_cpus: int | None = None,
    progress: bool = True,
) -> list:
    """``[task(**shared, **config) for config in configs]``, locally or as Ray tasks of
    ``cpus_per_task`` CPUs each (``num_cpus`` for a local Ray; the shared arguments, the
    data, are put in Ray's object store once, not sent with every task). A task that sets
    its torch threads (``num_threads``) computes the same numbers wherever it runs."""
    shared = dict(shared or {})
    if not on_ray:
        return [task(**shared, **config) for config in tqdm(configs, desc="runs", unit="run", disable=not progress)]
    import ray

    with ray_session(address, num_cpus=num_cpus):
        stored = {name: ray.put(value) for name, value in shared.items()}
        remote = ray.remote(num_cpus=cpus_per_task)(_call)
        futures = [remote.remote(task, dict(config), **stored) for config in configs]
        bar = tqdm(total=len(futures), desc="runs on Ray", unit="run", disable=not progress)
        pending = list(futures)
        while pending:
            finished, pending = ray.wait(pending, num_returns=1)
            bar.update(len(finished))
        bar.close()
        return ray.get(futures)


def _call(task: Callable[..., Any], config: dict, **shared) -> Any:
    """A run on a Ray worker (Ray resolved the shared arguments from its object store)."""
    return task(**shared, **config)
