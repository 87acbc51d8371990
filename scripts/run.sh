#!/usr/bin/env bash
# `make run`: start a single-node Odin engine on the embedded defaults, deploy
# the example job once it answers, and keep the engine in the foreground
# (Ctrl-C stops it). Extra arguments go to odin-engine.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ "$(id -u)" = 0 ] && ! getent group odin >/dev/null; then
  groupadd --system odin
  echo "created the 'odin' group; add users with: usermod -aG odin USER"
fi

odin-engine "$@" &
engine=$!
trap 'kill -TERM "$engine" 2>/dev/null || true; wait "$engine" 2>/dev/null || true' INT TERM EXIT

for _ in $(seq 300); do
  if odin list >/dev/null 2>&1; then break; fi
  if ! kill -0 "$engine" 2>/dev/null; then echo "odin-engine exited" >&2; exit 1; fi
  sleep 0.1
done

odin deploy -f examples/hello/hello.yml
cat <<MSG

Odin is running (Ctrl-C stops it). In another terminal, from this folder:
  . .venv/bin/activate
  odin list                      # the example job, with its next run
  odin log -i 0d1e2c3b4a59       # its runs (one a minute)
  odin stats -i 0d1e2c3b4a59     # what it recorded with the SDK
  odin dashboard                 # a one-time login link to http://localhost:4200
MSG
wait "$engine"
