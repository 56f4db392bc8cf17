"""Connect to Ray for one job: a local Ray with ``num_cpus`` started for it (and stopped
after), or an existing cluster given its address (left running)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def ray_session(address: str | None = None, num_cpus: int | None = None) -> Iterator[None]:
    """Ray for the duration of a ``with`` block. ``address=None`` starts a new local Ray with
    ``num_cpus`` CPUs (all of this machine's when None; never another process's Ray) unless
    one is already running in this process; ``address="ray://host:10001"`` or ``"auto"``
    joins a cluster."""
    try:
        import ray
    except ImportError as error:
        raise ImportError("Ray is not installed; `pip install -e .[scale]` adds it (the local path needs no Ray)") \
            from error  # fmt: skip
    started = not ray.is_initialized()
    if started:
        options = {"address": address} if address is not None else {"address": "local", "num_cpus": num_cpus}
        ray.init(include_dashboard=False, log_to_driver=False, configure_logging=False, **options)
    try:
        yield
    finally:
        if started:
            ray.shutdown()
