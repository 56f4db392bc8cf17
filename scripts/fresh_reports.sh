#!/usr/bin/env bash
# `make fresh-reports`: what regenerating every default-profile number costs from nothing.
# Clones this commit into a temporary folder (no .venv, no checkpoints, no caches, no data),
# times `make reports` there with /usr/bin/time, writes the measurement to
# reports/results/from_scratch.csv and copies the clone's reports/ back here.
# The data comes from SRC (default: this checkout's verified data/raw/bloodmnist.npz);
# NOTEBOOKS="notebooks/04_....ipynb ..." times only those (each still from nothing).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
src="${SRC:-$root/data/raw/bloodmnist.npz}"
work="$(mktemp -d)"
git clone --quiet "$root" "$work/repo"
cd "$work/repo"
commit="$(git rev-parse --short HEAD)"
started="$(date -u '+%Y-%m-%d %H:%M UTC')"
notebooks="${NOTEBOOKS:-$(ls notebooks/[0-9][0-9]_*.ipynb | tr '\n' ' ')}"
/usr/bin/time -v -o "$work/time.txt" make reports SRC="$src" PYTHON="${PYTHON:-python3}" NOTEBOOKS="$notebooks"
wall="$(awk -F': ' '/Elapsed \(wall clock\)/ {print $2}' "$work/time.txt")"
rss="$(awk -F': ' '/Maximum resident set size/ {print $2}' "$work/time.txt")"
.venv/bin/python - "$commit" "$started" "$wall" "$rss" "$notebooks" <<'PY'
import os, sys
from pathlib import Path
import pandas as pd
from bloodssl.reports import cpu_name
commit, started, wall, rss, notebooks = sys.argv[1:]
parts = [float(p) for p in wall.split(":")]  # h:mm:ss or m:ss.ss
seconds = sum(p * 60 ** i for i, p in enumerate(reversed(parts)))
names = " ".join(Path(n).stem[:2] for n in notebooks.split())
row = {"command": "make reports", "notebooks": names, "profile": "default", "commit": commit, "started": started,
       "wall_seconds": round(seconds, 1), "max_rss_mib": round(int(rss) / 1024), "cpu_cores": os.cpu_count(),
       "cpu": cpu_name(), "reused": "nothing (fresh clone: no .venv, checkpoints, caches or results)"}
path = Path("reports/results/from_scratch.csv")
table = pd.read_csv(path, dtype={"notebooks": str}) if path.is_file() else pd.DataFrame()
table = table[table["notebooks"] != names] if len(table) else table  # the latest measurement of each set
pd.concat([table, pd.DataFrame([row])]).to_csv(path, index=False)
print(f"make reports from scratch: {seconds / 60:.1f} min")
PY
cp -r "$work/repo/reports/." "$root/reports/"
echo "copied $work/repo/reports into $root/reports; run \`make readme\` there"
