#!/usr/bin/env bash
# `make fresh-reports`: what regenerating every default-profile number costs from nothing.
# Clones this commit into a temporary folder (no .venv, no checkpoints, no caches, no data),
# times `make reports` there with /usr/bin/time, writes the measurement to
# reports/results/from_scratch.csv and copies the clone's reports/ back here.
# The data comes from SRC (default: this checkout's verified data/raw/bloodmnist.npz).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
src="${SRC:-$root/data/raw/bloodmnist.npz}"
work="$(mktemp -d)"
git clone --quiet "$root" "$work/repo"
cd "$work/repo"
commit="$(git rev-parse --short HEAD)"
started="$(date -u '+%Y-%m-%d %H:%M UTC')"
/usr/bin/time -v -o "$work/time.txt" make reports SRC="$src" PYTHON="${PYTHON:-python3}"
wall="$(awk -F': ' '/Elapsed \(wall clock\)/ {print $2}' "$work/time.txt")"
rss="$(awk -F': ' '/Maximum resident set size/ {print $2}' "$work/time.txt")"
.venv/bin/python - "$commit" "$started" "$wall" "$rss" <<'PY'
import os, sys
import pandas as pd
commit, started, wall, rss = sys.argv[1:]
parts = [float(p) for p in wall.split(":")]  # h:mm:ss or m:ss.ss
seconds = sum(p * 60 ** i for i, p in enumerate(reversed(parts)))
row = {"command": "make reports", "profile": "default", "commit": commit, "started": started,
       "wall_seconds": round(seconds, 1), "max_rss_mib": round(int(rss) / 1024), "cpu_cores": os.cpu_count(),
       "reused": "nothing (fresh clone: no .venv, checkpoints, caches or results)"}
pd.DataFrame([row]).to_csv("reports/results/from_scratch.csv", index=False)
print(f"make reports from scratch: {seconds / 60:.1f} min")
PY
cp -r "$work/repo/reports/." "$root/reports/"
echo "copied $work/repo/reports into $root/reports; run \`make readme\` there"
