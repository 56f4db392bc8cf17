"""Execute the notebooks into ``reports/`` (the README's tables: ``bloodssl.readme``).

``python -m bloodssl.reports run --profile default`` is what ``make reports`` calls: each
notebook runs with papermill into a staging folder; only when it succeeds are its executed
copy, HTML, figures and results moved into ``reports/`` together, so a failure leaves the
previous report and its numbers in place (the failed copy goes to ``reports/failed/``). Progress
bars inside the kernel are switched off: they would freeze at 0 % in the saved notebook.
``python -m bloodssl.reports readme`` rewrites the README between its result markers.
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import sys
import tempfile
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from unittest import mock

import pandas as pd

from bloodssl import paths, predictions, readme
from bloodssl.core.io import atomic_path


def notebooks(folder: Path | None = None) -> list[Path]:
    """The numbered notebooks, in order."""
    return sorted(Path(folder or paths.NOTEBOOKS).glob("[0-9][0-9]_*.ipynb"))


INLINE_BACKEND = "module://matplotlib_inline.backend_inline"


def export_html(notebook: Path, target: Path) -> None:
    """Write ``notebook`` as a standalone HTML page (no Jupyter needed to read it)."""
    import nbformat
    from nbconvert import HTMLExporter

    body, _ = HTMLExporter().from_notebook_node(nbformat.read(notebook, as_version=4))
    with atomic_path(target) as tmp:
        tmp.write_text(body, encoding="utf-8")


def execute(notebook: Path, profile: str, reports_dir: Path | None = None, **parameters) -> float:
    """Run ``notebook`` with ``profile``; on success publish its .ipynb, .html, figures and
    results together and return the wall time in seconds.

    The kernel writes its figures and results to a staging folder; only when every cell
    succeeded are they moved into ``paths.reports_for(profile)`` (the executed copy and HTML
    into ``reports_dir``, by default the same place), replacing the notebook's previous
    figures. A failure publishes nothing: report, figures and results stay as they were, and
    the failed copy goes to ``<reports_dir>/failed/``.
    """
    import papermill

    outputs = paths.reports_for(profile, parameters.get("dataset", paths.PUBLISHED_DATASET))
    reports_dir = Path(reports_dir or outputs)
    reports_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=reports_dir, prefix=".run-") as tmp:
        executed, staging = Path(tmp) / notebook.name, Path(tmp) / "outputs"
        start = time.perf_counter()
        try:
            # progress bars would freeze at 0 % in the saved report, so the kernel gets none; figures are
            # drawn inline whatever backend the caller's environment names (MPLBACKEND=Agg would drop them)
            kernel_env = {"TQDM_DISABLE": "1", "MPLBACKEND": INLINE_BACKEND, "BLOODSSL_REPORTS": str(staging),
                          paths.PUBLISHED_ENV: str(paths.REPORTS)}  # fmt: skip
            with mock.patch.dict(os.environ, kernel_env):
                papermill.execute_notebook(
                    str(notebook), str(executed), parameters={"profile": profile, **parameters},
                    cwd=str(notebook.parent), kernel_name="python3", progress_bar=False,
                )  # fmt: skip
        except Exception:
            failed = reports_dir / "failed" / notebook.name
            failed.parent.mkdir(exist_ok=True)
            if executed.exists():
                shutil.copyfile(executed, failed)
            print(f"{notebook.name} failed; its previous report, figures and results are unchanged; see {failed}",
                  file=sys.stderr)  # fmt: skip
            raise
        seconds = time.perf_counter() - start
        export_html(executed, Path(tmp) / f"{notebook.stem}.html")
        publish(staging, outputs, notebook.stem)
        os.replace(Path(tmp) / f"{notebook.stem}.html", reports_dir / f"{notebook.stem}.html")
        os.replace(executed, reports_dir / notebook.name)
    record_timing(notebook.stem, profile, seconds, outputs / "results")
    return seconds


def publish(staging: Path, outputs: Path, stem: str) -> None:
    """Move the figures and results a notebook run wrote to ``staging`` into ``outputs``,
    first removing the notebook's figures (``<stem>_*.png``) that the run no longer draws, and
    last the parts of its predictions (``predictions.save``) that the new file no longer lists.
    The new predictions file is read before anything moves: a damaged one publishes nothing."""
    staged = staging / "results" / f"{stem}{predictions.SUFFIX}"
    keep = predictions.listed_parts(stem, staged.parent) if staged.is_file() else None
    figures = {path.name for path in (staging / "figures").glob("*.png")}
    for old in (outputs / "figures").glob(f"{stem}_*.png"):
        if old.name not in figures:
            old.unlink()
    written = {path.relative_to(staging) for path in staging.rglob("*") if path.is_file()}
    for name in sorted(written):  # a predictions file's parts before the file that lists them
        target = outputs / name
        target.parent.mkdir(parents=True, exist_ok=True)
        os.replace(staging / name, target)
    if keep is not None:
        predictions.remove_unlisted_parts(stem, outputs / "results", keep)


def cpu_name(cpuinfo: str | None = None) -> str:
    """This machine's CPU model and widest vector instructions, as ``AMD EPYC, AVX-512``, from
    ``/proc/cpuinfo`` (``cpuinfo``: its text): the same code trains two to three times faster on
    one 2-core machine than on another, so every timing says where it was measured."""
    if cpuinfo is None:
        try:
            cpuinfo = Path("/proc/cpuinfo").read_text()
        except OSError:  # not Linux
            return platform.processor() or platform.machine()
    fields = dict(line.split(":", 1) for line in cpuinfo.splitlines()[::-1] if ":" in line)  # the first CPU's
    fields = {key.strip(): value.strip() for key, value in fields.items()}
    flags = set(fields.get("flags", "").split())
    widest = "AVX-512" if "avx512f" in flags else "AVX2" if "avx2" in flags else "no AVX2"
    return f"{fields.get('model name', platform.machine())}, {widest}"


def record_timing(stem: str, profile: str, seconds: float, results_dir: Path) -> None:
    """Keep the latest wall time of each (notebook, profile) in ``results_dir/timings.csv``."""
    path = results_dir / f"{readme.TIMINGS}.csv"
    table = pd.read_csv(path) if path.is_file() else pd.DataFrame()
    if len(table):
        table = table[(table["notebook"] != stem) | (table["profile"] != profile)]
    row = pd.DataFrame([{"notebook": stem, "profile": profile, "wall_seconds": round(seconds, 1),
                         "finished": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
                         "cpu_cores": os.cpu_count(), "cpu": cpu_name()}])  # fmt: skip
    table = pd.concat([table, row]).sort_values(["notebook", "profile"])
    with atomic_path(path) as tmp:
        table.to_csv(tmp, index=False)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bloodssl.reports", description=__doc__.split("\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    run = commands.add_parser("run", help="execute notebooks into reports/ (all numbered ones by default)")
    run.add_argument("notebooks", nargs="*", type=Path)
    run.add_argument("--profile", default="default", choices=("smoke", "default", "full"))
    commands.add_parser("readme", help="rebuild the README's results tables from reports/results/")
    args = parser.parse_args(argv)
    if args.command == "readme":
        readme.update_readme()
        return
    failed = run_all(args.notebooks or notebooks(), args.profile)
    if failed:
        sys.exit(f"{len(failed)} notebook(s) failed, their previous reports are unchanged: {', '.join(failed)}")


def run_all(notebook_paths: Sequence[Path], profile: str) -> list[str]:
    """Execute every notebook of ``notebook_paths`` at ``profile``, also those after a failure;
    return the names of the ones that failed."""
    failed = []
    for notebook in notebook_paths:
        print(f"running {notebook.name} (profile {profile}) ...", flush=True)
        try:
            seconds = execute(notebook, profile)
        except Exception as error:  # noqa: BLE001 - one notebook's failure must not stop the others
            print(f"  FAILED: {type(error).__name__}: {str(error).strip().splitlines()[-1:]}", flush=True)
            failed.append(notebook.name)
            continue
        print(f"  done in {seconds / 60:.1f} min -> {paths.reports_for(profile) / notebook.stem}.html", flush=True)
    return failed


if __name__ == "__main__":
    main()
