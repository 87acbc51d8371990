#!/usr/bin/env bash
# Create the `odin` group and the Unix users the test suite runs jobs as.
# Idempotent; needs root (without root it says so and does nothing).
set -euo pipefail
if [ "$(id -u)" != 0 ]; then
  echo "test-users: not root, skipping (tests that need real users will be skipped)" >&2
  exit 0
fi
getent group odin >/dev/null || groupadd --system odin
for user in odin-alice odin-bob; do
  id "$user" >/dev/null 2>&1 || useradd --create-home --shell /bin/bash "$user"
  usermod -aG odin "$user"
done
# A user who is not in the group, to prove refusals.
id odin-eve >/dev/null 2>&1 || useradd --create-home --shell /bin/bash odin-eve
