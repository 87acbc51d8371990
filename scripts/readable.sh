# Sourced by scripts/test.sh and scripts/bench.sh: make the working directory a checkout the
# test users can read. End-to-end tests and the fault benchmark run the CLI and jobs from the
# checkout's venv as odin-alice and odin-bob; a checkout they cannot enter (one under /root,
# say) is mirrored into a readable copy with its own venv, and the caller goes on there.
# Sets ORIGIN to the checkout it was called from.
ORIGIN=$PWD
bash scripts/test-users.sh
if [ "$(id -u)" = 0 ] && ! runuser -u odin-alice -- test -r "$PWD/pyproject.toml"; then
  dest=${ODIN_TEST_COPY:-/var/tmp/odin-test-$(id -u)/src}
  echo "odin-alice cannot read $PWD; working from a copy in $dest" >&2
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
