#!/usr/bin/env bash
# `make test`'s last step: create the test users, then run pytest from a checkout they can
# read (scripts/readable.sh). Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/readable.sh
PATH="$PWD/.venv/bin:$PATH" exec .venv/bin/pytest "$@"
