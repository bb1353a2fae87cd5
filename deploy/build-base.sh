#!/usr/bin/env bash
# Builds the image's base from Debian packages with mmdebstrap (no Docker, no registry pull) and tags it in the
# local buildah storage, so deploy/Dockerfile can be built on it: --build-arg BASE=localhost/auditpack-base:bookworm.
#
#   deploy/build-base.sh [TAG]        (as root; needs mmdebstrap and buildah: apt-get install mmdebstrap buildah)
#
# The base holds only Debian's essential set (dpkg, coreutils, a /bin/sh for the Dockerfile's RUN lines; no apt)
# plus what auditpack needs: Python 3.11 with venv, WeasyPrint's Pango/HarfBuzz/fontconfig, the DejaVu fonts the
# report names, libstdc++ (the CEL engine is C++), tzdata (zoneinfo), CA certificates (for the API server and
# S3), and passwd for the image's user.
# Environment: BUILDAH_ARGS (e.g. "--root DIR --runroot DIR --storage-driver vfs"), DEBIAN_MIRROR, SUITE.
set -euo pipefail

tag=${1:-localhost/auditpack-base:bookworm}
suite=${SUITE:-bookworm}  # pinned: Python 3.11 and the package versions of Debian 12
mirror=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
read -r -a buildah_args <<< "${BUILDAH_ARGS:---storage-driver vfs}"
packages=python3,python3-venv,libpango-1.0-0,libpangoft2-1.0-0,libharfbuzz0b,libharfbuzz-subset0,libfontconfig1
packages+=,fonts-dejavu-core,libstdc++6,tzdata,ca-certificates,passwd

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
started=$(date +%s)
# Manuals, translations and docs are left out (copyright files kept); apt lists and caches are removed by
# mmdebstrap's default cleanup. Security updates come from the suite's security archive.
mmdebstrap --quiet --mode=root --variant=essential --include="$packages" \
  --dpkgopt='path-exclude=/usr/share/man/*' --dpkgopt='path-exclude=/usr/share/locale/*' \
  --dpkgopt='path-exclude=/usr/share/doc/*' --dpkgopt='path-include=/usr/share/doc/*/copyright' \
  "$suite" "$work/rootfs.tar" \
  "deb $mirror $suite main" "deb $mirror $suite-updates main" \
  "deb http://deb.debian.org/debian-security $suite-security main"

ctr=$(buildah "${buildah_args[@]}" from scratch)
buildah "${buildah_args[@]}" add "$ctr" "$work/rootfs.tar" / >/dev/null
buildah "${buildah_args[@]}" config \
  --env PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin --env LANG=C.UTF-8 \
  --label org.opencontainers.image.title="auditpack-base" \
  --label org.opencontainers.image.description="Debian $suite essential set with Python 3, Pango and DejaVu fonts (mmdebstrap)" \
  --cmd /bin/sh "$ctr"
buildah "${buildah_args[@]}" commit --quiet --rm "$ctr" "$tag" >/dev/null
echo "base $tag built in $(($(date +%s) - started)) s ($(du -sh "$work/rootfs.tar" | cut -f1) tar)"
