#!/usr/bin/env bash
# Builds auditpack's image without a Docker daemon: the base from Debian packages (deploy/build-base.sh,
# mmdebstrap), then deploy/Dockerfile on it with buildah (chroot isolation, vfs storage: runs as root in a plain
# container or VM). Prints the build time, the image's size and its ID.
#
#   deploy/build-image.sh [TAG]      default TAG: localhost/auditpack:VERSION
#
# Environment:
#   BUILDAH_ARGS      global buildah options (default "--storage-driver vfs"); run-image-test.sh points them at a
#                     throw-away storage directory so nothing is cached between CI runs
#   BASE              use this base image instead of building one (e.g. docker.io/library/python:3.11-slim-bookworm)
#   BUILD_CA_BUNDLE   CA bundle pip trusts while it downloads from PyPI during the build (default: this host's
#                     /etc/ssl/certs/ca-certificates.crt, so a TLS-intercepting egress proxy the host trusts works);
#                     bind-mounted for the build only, never copied into the image
set -euo pipefail
cd "$(dirname "$0")/.."

version=$(sed -n 's/^version = "\(.*\)"$/\1/p' pyproject.toml | head -n1)
tag=${1:-localhost/auditpack:$version}
read -r -a buildah_args <<< "${BUILDAH_ARGS:---storage-driver vfs}"
revision=$(git rev-parse HEAD 2>/dev/null || echo unknown)
source_url=${SOURCE_URL:-$(git remote get-url origin 2>/dev/null || echo unknown)}
git diff --quiet HEAD -- evidence controls report_templates pyproject.toml 2>/dev/null || revision+="-dirty"

started=$(date +%s)
base=${BASE:-}
if [ -z "$base" ]; then
  base=localhost/auditpack-base:bookworm
  deploy/build-base.sh "$base"
fi
base_done=$(date +%s)

extra=()
ca=${BUILD_CA_BUNDLE:-/etc/ssl/certs/ca-certificates.crt}
if [ -r "$ca" ]; then
  extra+=(--volume "$ca:/run/build-ca-bundle.pem:ro" --build-arg REQUESTS_CA_BUNDLE=/run/build-ca-bundle.pem)
fi

# --format docker: the OCI image config has no HEALTHCHECK; Docker's format keeps it.
buildah "${buildah_args[@]}" bud --isolation chroot --format docker --pull=false \
  --ignorefile deploy/Dockerfile.dockerignore -f deploy/Dockerfile \
  --build-arg BASE="$base" --build-arg VERSION="$version" --build-arg REVISION="$revision" \
  --build-arg SOURCE="$source_url" \
  "${extra[@]}" --tag "$tag" .
done_at=$(date +%s)

size=$(buildah "${buildah_args[@]}" images --format '{{.Size}}' "$tag" | head -n1)
id=$(buildah "${buildah_args[@]}" images --no-trunc --format '{{.ID}}' "$tag" | head -n1)
echo "image $tag: base $((base_done - started)) s, Dockerfile $((done_at - base_done)) s, total $((done_at - started)) s;" \
     "size $size (uncompressed); id $id; revision $revision"
