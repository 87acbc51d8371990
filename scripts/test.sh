#!/usr/bin/env bash
# `make test`'s last step: create the test users, then run pytest from a checkout
# they can read. The end-to-end tests run the CLI and jobs from this checkout's
# venv as odin-alice and odin-bob; a checkout they cannot enter (one under
# /root, say) is mirrored into a readable copy with its own venv, and the
# suite runs there. Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/test-users.sh

if [ "$(id -u)" = 0 ] && ! runuser -u odin-alice -- test -r "$PWD/pyproject.toml"; then
  dest=${ODIN_TEST_COPY:-/var/tmp/odin-test-$(id -u)/src}
  echo "test: odin-alice cannot read $PWD; running the suite from a copy in $dest" >&2
  mkdir -p "$dest"
  chmod 755 "$(dirname "$dest")"
  # The copy's own venv is kept between runs (rebuilt when pyproject.toml changes).
  find "$dest" -mindepth 1 -maxdepth 1 ! -name .venv -exec rm -rf {} +
  tar --exclude=./.venv --exclude=./.git --exclude=__pycache__ -cf - . | tar -xf - -C "$dest"
  chmod -R a+rX "$dest"
  cd "$dest"
  make -s setup PYTHON="${PYTHON:-/usr/bin/python3}"
  chmod -R a+rX .venv
fi

PATH="$PWD/.venv/bin:$PATH" exec .venv/bin/pytest "$@"
