#!/usr/bin/env bash
# `make bench` and `make bench-quick`: run the benchmarks from a checkout the test users can
# read (scripts/readable.sh: the fault drills run jobs as odin-alice), and bring the report
# and its plots back to this checkout. Extra arguments go to `python -m bench`.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/readable.sh
status=0
PATH="$PWD/.venv/bin:$PATH" .venv/bin/python -m bench "$@" || status=$?
if [ "$PWD" != "$ORIGIN" ]; then
  mkdir -p "$ORIGIN/bench/results"
  cp -a bench/results/. "$ORIGIN/bench/results/"
fi
exit "$status"
