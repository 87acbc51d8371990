#!/usr/bin/env bash
# Builds OUT/odin_VERSION_ARCH.deb (OUT defaults to dist/) with dpkg-deb: Odin in a Python venv
# at /opt/odin, links in /usr/bin, the systemd unit, /etc/default/odin (a conffile), shell
# completions and the maintainer scripts beside this file. Needs root (or unprivileged user
# namespaces), dpkg-deb, the system python3 with its venv module, and PyPI for the dependencies.
#
# The architecture is the build host's (dpkg --print-architecture), not `all`: the venv holds
# compiled wheels (orjson, pydantic-core, cryptography...) for this CPU and this Python, so the
# package also depends on exactly the python3.X the venv was made with.
#
# A venv is not relocatable: its scripts' #! lines, pyvenv.cfg and bin/activate hold its
# absolute path. So it is built at its final path, /opt/odin, in a private mount namespace
# (unshare) where /opt is an overlay of the host's /opt (pip's local mirrors there stay
# visible) with the staging tree's opt/odin bind-mounted on /opt/odin: what pip writes there
# lands in the staging tree, and the host's /opt (even an installed /opt/odin) is neither
# seen nor touched. The overlay's own layers live on a tmpfs that ends with the namespace.
# No path rewriting, no chroot.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
out=$(mkdir -p "${1:-$repo/dist}" && cd "${1:-$repo/dist}" && pwd)
python=${PYTHON:-/usr/bin/python3}
maintainer=${DEB_MAINTAINER:-Odin developers <odin@example.org>}
prefix=/opt/odin

die() {
    echo "build.sh: $*" >&2
    exit 1
}

command -v dpkg-deb >/dev/null || die "dpkg-deb is missing (apt-get install dpkg)"
command -v unshare >/dev/null || die "unshare is missing (apt-get install util-linux)"
# The interpreter the venv links to, by its versioned name: python3 may point elsewhere later.
pyver=$("$python" -c 'import sys; print("%d.%d" % sys.version_info[:2])')
interp=/usr/bin/python$pyver
pypkg=python$pyver  # the venv's interpreter and its whole standard library
dpkg-query -W -f '${Status}' "$pypkg" 2>/dev/null | grep -q ' installed$' ||
    die "$interp is not Debian's $pypkg: set PYTHON to the system python3"
"$interp" -c 'import ensurepip' 2>/dev/null || die "no venv module: apt-get install python3-venv"

version=$("$interp" - "$repo/pyproject.toml" <<'PY'
import re, sys, tomllib
with open(sys.argv[1], "rb") as handle:
    version = tomllib.load(handle)["project"]["version"]
# PEP 440 pre-releases sort before the release in Debian only with a tilde: 1.0rc1 -> 1.0~rc1.
print(re.sub(r"\.?(a|b|rc|dev)(\d+)$", r"~\1\2", version))
PY
)
arch=$(dpkg --print-architecture)
deb="$out/odin_${version}_${arch}.deb"

work=$(mktemp -d "${TMPDIR:-/tmp}/odin-deb.XXXXXX")
trap 'rm -rf "$work"' EXIT
stage=$work/odin
mkdir -p "$stage$prefix" "$stage/DEBIAN" "$work/layers"
chmod 0755 "$work" "$stage" "$stage/opt" "$stage$prefix"

# The venv, at its final path inside the namespace (see the top of this file), without
# bytecode: the postinst compiles it (as py3compile does for Debian's Python packages) and the
# prerm removes it. pip and setuptools then go (a third of the venv): dpkg, not pip, owns it.
namespace=(unshare --mount --propagation private)
[ "$(id -u)" -eq 0 ] || namespace=(unshare --user --map-root-user --mount --propagation private)
# shellcheck disable=SC2016 # expanded by the inner bash, from its arguments
PYTHONDONTWRITEBYTECODE=1 "${namespace[@]}" bash -euo pipefail -c '
    mount -t tmpfs -o mode=0700 odin-build "$1/layers"
    mkdir "$1/layers/upper" "$1/layers/work"
    mount -t overlay -o "lowerdir=/opt,upperdir=$1/layers/upper,workdir=$1/layers/work" \
        odin-build /opt
    mkdir -p /opt/odin
    mount --bind "$1/odin/opt/odin" /opt/odin
    "$2" -m venv "$3"
    "$3/bin/pip" install --quiet --no-compile --use-pep517 --no-warn-script-location "$4"
    rm -f "$3"/lib/python*/site-packages/odin_scheduler-*.dist-info/direct_url.json
    "$3/bin/python" "$5/render.py" "$1/odin"
    "$3/bin/python" -m pip uninstall --quiet --yes pip setuptools
' _ "$work" "$interp" "$prefix" "$repo" "$here"

# What dh_strip and dh_fixperms would do to the wheels' files: no debugging symbols in shared
# objects (when binutils is here), no executable bit on modules.
site=$(echo "$stage$prefix"/lib/python*/site-packages)
if command -v strip >/dev/null; then
    find "$site" -name '*.so' -exec strip --strip-unneeded {} +
fi
find "$site" -type f -perm /111 ! -name '*.so' -exec chmod a-x {} +
find "$stage$prefix" -name __pycache__ -prune -exec rm -rf {} +

# Commands on every user's PATH.
mkdir -p "$stage/usr/bin"
ln -s "$prefix/bin/odin" "$stage/usr/bin/odin"
ln -s "$prefix/bin/odin-engine" "$stage/usr/bin/odin-engine"

# Documentation: the copyright (Odin's and where the bundled packages' licences are), a changelog.
doc=$stage/usr/share/doc/odin
mkdir -p "$doc" "$stage/usr/share/lintian/overrides"
year=$(date -u +%Y ${SOURCE_DATE_EPOCH:+-d "@$SOURCE_DATE_EPOCH"})
sed "s|@PYVER@|$pyver|g; s|@YEAR@|$year|g" "$here/copyright" >"$doc/copyright"
cat >"$work/changelog" <<EOF
odin ($version) unstable; urgency=medium

  * Odin $version, built from its source tree by packaging/deb/build.sh.
    The project's CHANGELOG.md lists what changed.

 -- $maintainer  $(date -R ${SOURCE_DATE_EPOCH:+-d "@$SOURCE_DATE_EPOCH"})
EOF
gzip -9n <"$work/changelog" >"$doc/changelog.gz"
cp "$here/lintian-overrides" "$stage/usr/share/lintian/overrides/odin"

# The glibc the bundled wheels need: each wheel runs on the oldest glibc among its manylinux
# tags (manylinux_2_N, or the older names), and all of them on the newest of those.
glibc=17
for wheel in "$site"/*.dist-info/WHEEL; do
    need=$(sed -n 's/^Tag: .*-manylinux_2_\([0-9]*\)_.*/\1/p; s/^Tag: .*-manylinux1_.*/5/p
        s/^Tag: .*-manylinux2010_.*/12/p; s/^Tag: .*-manylinux2014_.*/17/p' "$wheel" |
        sort -n | head -n 1)
    if [ -n "$need" ] && [ "$need" -gt "$glibc" ]; then glibc=$need; fi
done

find "$stage" -type d -exec chmod 0755 {} +
find "$stage" -type f -exec chmod go-w {} +
install -m 0755 "$here/postinst" "$here/prerm" "$here/postrm" "$stage/DEBIAN/"
install -m 0644 "$here/conffiles" "$stage/DEBIAN/"
(cd "$stage" && find . -path ./DEBIAN -prune -o -type f -printf '%P\0' | sort -z |
    xargs -0 md5sum >DEBIAN/md5sums)
chmod 0644 "$stage/DEBIAN/md5sums"

# Depends: the venv's python3.X; python3, which runs Python jobs (odin.executor.interpreters);
# the glibc of the wheels; libpam0g, which python-pam loads for dashboard logins; groupadd.
cat >"$stage/DEBIAN/control" <<EOF
Package: odin
Version: $version
Architecture: $arch
Maintainer: $maintainer
Installed-Size: $(du -sk --exclude=DEBIAN "$stage" | cut -f1)
Depends: $pypkg, python3 (>= $pyver), libc6 (>= 2.$glibc), libpam0g, passwd
Recommends: systemd, musl-tools | gcc
Suggests: golang-go, nodejs
Section: admin
Priority: optional
Description: self-hosted distributed job scheduler
 Odin runs jobs written in Python, Go or Node on schedules written in plain
 English, as the user who deployed them, keeps their output and status, and
 sends alerts when they fail. Only root and members of group odin may use it.
 .
 This package holds Odin in its own Python virtual environment in /opt/odin,
 the odin and odin-engine commands, the odin-engine systemd unit and shell
 completion. Its data lives in /var/lib/odin, which only a purge deletes.
EOF

dpkg-deb --root-owner-group -Zxz --build "$stage" "$deb" >/dev/null
echo "$deb"
