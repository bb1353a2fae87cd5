#!/usr/bin/env bash
# CI's proof that the quarterly job's image works (.ci/run calls it): builds the image (deploy/build-image.sh)
# into throw-away buildah storage, then runs the CronJob's own `auditpack collect` arguments inside it the way
# the CronJob does: uid 10001, root filesystem read-only, writable only /tmp (tmpfs) and /packs, the scope, a
# kubeconfig and the signing key mounted read-only under /etc/auditpack (key root-owned 0440, group 10001, as
# the kubelet mounts the Secret with fsGroup). The API server is tests/fakeapi serving samples/demo-cluster over
# HTTPS on the host's loopback, which the run shares (only the mount namespace is private). Then, from outside:
# `auditpack verify --public-key` must exit 0 and every font of the report PDF must be embedded DejaVu (the
# image's own fonts). Prints the build time, image size, and the run's wall time and peak RSS.
#
#   deploy/run-image-test.sh         (as root, from a checkout with .venv; needs buildah, mmdebstrap, unshare)
#
# Bounded: the build gets IMAGE_BUILD_TIMEOUT (default 1200 s), the collect IMAGE_RUN_TIMEOUT (default 600 s).
# While working on the image: IMAGE=TAG with BUILDAH_ARGS naming its storage runs an image already built there
# (deploy/build-image.sh) and leaves that storage alone.
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$PWD
py=${PYTHON:-$repo/.venv/bin/python}
auditpack=$(dirname "$py")/auditpack
host_python=$(command -v python3)
tag=${IMAGE:-localhost/auditpack:ci}

fail() { echo "image test FAILED: $*" >&2; exit 1; }
[ "$(id -u)" = 0 ] || fail "must run as root (buildah with chroot isolation and vfs storage, bind mounts)"
for tool in buildah mmdebstrap unshare mount; do command -v "$tool" >/dev/null || fail "$tool is not installed"; done

work=$(mktemp -d "${TMPDIR:-/var/tmp}/auditpack-image.XXXXXX")
[ -n "${IMAGE:-}" ] || export BUILDAH_ARGS="--root $work/storage --runroot $work/runroot --storage-driver vfs"
read -r -a buildah_args <<< "${BUILDAH_ARGS:---storage-driver vfs}"
fakeapi_pid=
ctr=
cleanup() {
  set +e
  [ -n "$fakeapi_pid" ] && kill "$fakeapi_pid" 2>/dev/null && wait "$fakeapi_pid" 2>/dev/null
  [ -n "$ctr" ] && buildah "${buildah_args[@]}" rm "$ctr" >/dev/null 2>&1
  [ -n "${IMAGE:-}" ] || buildah "${buildah_args[@]}" rmi --all --force >/dev/null 2>&1
  # The bind mounts lived in the run's own mount namespace and died with it: nothing of the host is below $work.
  rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 143' TERM INT  # timeout(1) or ^C: still clean up

# --- build ------------------------------------------------------------------------------------------------
build_started=$(date +%s)
if [ -z "${IMAGE:-}" ]; then
  timeout "${IMAGE_BUILD_TIMEOUT:-1200}" deploy/build-image.sh "$tag" 2>&1 | tee "$work/build.log" | tail -n 40 \
    || fail "the image build failed or timed out (log: the last lines above)"
fi
build_seconds=$(($(date +%s) - build_started))
size=$(buildah "${buildah_args[@]}" images --format '{{.Size}}' "$tag" | head -n1)

# --- the pod's volumes --------------------------------------------------------------------------------------
mkdir -p "$work/packs" "$work/etc/signing" "$work/keys" "$work/newroot"
chown 10001:10001 "$work/packs" && chmod 0750 "$work/packs"
"$auditpack" keys generate --out "$work/keys" >/dev/null
cp "$work/keys/auditpack-signing.key" "$work/keys/auditpack-signing.crt" "$work/etc/signing/"
cp samples/scope.yaml "$work/etc/scope.yaml"
chown -R 0:10001 "$work/etc" && chmod 0750 "$work/etc" "$work/etc/signing"
chmod 0440 "$work/etc/signing/"*
chmod 0444 "$work/etc/scope.yaml"  # a ConfigMap volume's files: world-readable, on a read-only mount

# --- the API server on the host's loopback --------------------------------------------------------------------
"$py" -m tests.fakeapi serve samples/demo-cluster --kubeconfig "$work/etc/kubeconfig" \
  >"$work/fakeapi.out" 2>"$work/fakeapi.err" &
fakeapi_pid=$!
for _ in $(seq 120); do grep -q '^READY ' "$work/fakeapi.out" 2>/dev/null && break; sleep 0.5; done
grep -q '^READY ' "$work/fakeapi.out" || fail "tests.fakeapi did not start: $(cat "$work/fakeapi.err")"
chown 0:10001 "$work/etc/kubeconfig" && chmod 0440 "$work/etc/kubeconfig"

# --- the container: the image's files, its environment, the CronJob's arguments -------------------------------
ctr=$(buildah "${buildah_args[@]}" from --pull=false "$tag")
rootfs=$(buildah "${buildah_args[@]}" mount "$ctr")
mkdir -p "$rootfs/etc/auditpack"  # the mount point the kubelet would create
buildah "${buildah_args[@]}" inspect --type image --format '{{range .OCIv1.Config.Env}}{{println .}}{{end}}' "$tag" \
  | sed '/^$/d' >"$work/image.env"
# AUDITPACK_DEBUG=1 deploy/run-image-test.sh: the traceback of a failing in-image run.
if [ -n "${AUDITPACK_DEBUG:-}" ]; then echo "AUDITPACK_DEBUG=$AUDITPACK_DEBUG" >>"$work/image.env"; fi
image_user=$(buildah "${buildah_args[@]}" inspect --type image --format '{{.OCIv1.Config.User}}' "$tag")
[ "$image_user" = 10001:10001 ] || fail "the image's USER is '$image_user', not 10001:10001"
mapfile -t args < <("$py" - <<'EOF'
import yaml
cron = yaml.safe_load(open("deploy/base/cronjob.yaml"))
(c,) = cron["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"]
print("\n".join(c["args"]))
EOF
)
args+=(--kubeconfig /etc/auditpack/kubeconfig)

cat >"$work/rusage.py" <<'EOF'
# Runs a command; prints its exit code, wall time and the peak RSS of the largest process it ran.
import resource, subprocess, sys, time
t = time.monotonic()
rc = subprocess.run(sys.argv[2:], timeout=float(sys.argv[1])).returncode
wall = time.monotonic() - t
peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
print(f"exit={rc} wall={wall:.1f}s peak_rss={peak:.0f}MiB", file=sys.stderr)
sys.exit(rc)
EOF

cat >"$work/inside.sh" <<'EOF'
# Runs in a private mount namespace: the pod's filesystem view, then the checks and the collect.
set -euo pipefail
work=$1 rootfs=$2 host_python=$3 run_timeout=$4; shift 4
mapfile -t image_env <"$work/image.env"
new=$work/newroot
mount --bind "$rootfs" "$new" && mount -o remount,bind,ro "$new"
mount -t proc proc "$new/proc"
mount -t tmpfs -o size=8m,mode=0755 tmpfs "$new/dev"
for d in null zero random urandom; do touch "$new/dev/$d" && mount --bind "/dev/$d" "$new/dev/$d"; done
# Every container runtime gives a container /dev/shm (64 MiB); multiprocessing's locks (the PDF is rendered in a
# child process) need it.
mkdir "$new/dev/shm" && mount -t tmpfs -o size=64m,mode=1777 tmpfs "$new/dev/shm"
mount -t tmpfs -o size=1g,mode=1777 tmpfs "$new/tmp"
mount --bind "$work/packs" "$new/packs"
mount --bind "$work/etc" "$new/etc/auditpack" && mount -o remount,bind,ro "$new/etc/auditpack"
as_user=(env -i "${image_env[@]}" /usr/sbin/chroot --userspec=10001:10001 --groups=10001 "$new")
# Even root cannot write the root filesystem: it is really read-only, as in the CronJob.
probe="import errno, sys
try:
    open('/opt/auditpack/probe', 'w')
except OSError as e:
    sys.exit(0 if e.errno == errno.EROFS else 2)
sys.exit(1)"
env -i "${image_env[@]}" /usr/sbin/chroot "$new" python3 -c "$probe" \
  || { echo "the root filesystem is not read-only (or python3 failed)" >&2; exit 1; }
echo "root filesystem: read-only (root gets EROFS)"
echo "health: $("${as_user[@]}" auditpack --version)"
cd /  # the image's WORKDIR is /packs; chroot starts in /
"$host_python" "$work/rusage.py" "$run_timeout" "${as_user[@]}" sh -c 'cd /packs && exec auditpack "$@"' auditpack "$@"
EOF

echo "collect inside the image: auditpack ${args[*]}"
set +e
unshare --mount --propagation private --fork -- \
  bash "$work/inside.sh" "$work" "$rootfs" "$host_python" "${IMAGE_RUN_TIMEOUT:-600}" "${args[@]}" \
  >"$work/collect.out" 2>"$work/collect.err"
rc=$?
set -e
cat "$work/collect.out"; tail -n 20 "$work/collect.err"
run_figures=$(grep -o 'exit=.*' "$work/collect.err" | tail -n1 || true)
# 0: controls passed; 1: pack written, controls failed (the demo cluster has failing controls on purpose).
[ "$rc" = 0 ] || [ "$rc" = 1 ] || fail "collect inside the image exited $rc"

# --- from outside: the pack, its signature, the PDF's fonts, the SBOM -----------------------------------------
mapfile -t packs < <(find "$work/packs" -mindepth 2 -maxdepth 2 -type d ! -name '.*')
[ "${#packs[@]}" = 1 ] || fail "expected one pack under the packs volume, found ${#packs[@]}"
pack=${packs[0]}
owner=$(stat -c %u:%g "$pack/manifest.json")
[ "$owner" = 10001:10001 ] || fail "the pack was written by $owner, not 10001:10001"
"$auditpack" verify "$pack" --public-key "$work/keys/auditpack-signing.pub" || fail "verify exited $?"
if command -v pdffonts >/dev/null; then pdffonts "$pack"/*.pdf | head -n 12; fi
"$py" - "$pack" "$rootfs/usr/share/doc/auditpack/sbom" <<'EOF'
"""Every font of the report PDF is embedded, and DejaVu (the image's fonts-dejavu-core); the SBOM is shipped."""
import json, sys
from pathlib import Path
from pypdf import PdfReader

pack, sbom = Path(sys.argv[1]), Path(sys.argv[2])
(pdf,) = pack.glob("*.pdf")
fonts: dict[str, bool] = {}
for page in PdfReader(pdf).pages:
    resources = page["/Resources"].get_object()
    for font in resources.get("/Font", {}).get_object().values():
        font = font.get_object()
        desc = font.get("/FontDescriptor") or font["/DescendantFonts"][0].get_object()["/FontDescriptor"]
        desc = desc.get_object()
        fonts[str(font["/BaseFont"])] = any(k in desc for k in ("/FontFile", "/FontFile2", "/FontFile3"))
assert fonts, f"{pdf.name}: no fonts"
assert all(fonts.values()), f"{pdf.name}: fonts not embedded: {[f for f, e in fonts.items() if not e]}"
assert all("DejaVu" in f for f in fonts), f"{pdf.name}: fonts other than DejaVu: {sorted(fonts)}"
print(f"{pdf.name}: {len(fonts)} fonts, all embedded: {', '.join(sorted(fonts))}")
bom = json.loads((sbom / "python-packages.cdx.json").read_text())
names = {c["name"].lower() for c in bom["components"]}
assert bom["bomFormat"] == "CycloneDX" and bom["metadata"]["component"]["name"] == "auditpack", bom["metadata"]
assert {"weasyprint", "kubernetes", "boto3", "cryptography"} <= names, sorted(names)
debs = dict(line.split("\t")[:2] for line in (sbom / "debian-packages.tsv").read_text().splitlines())
assert {"libpango-1.0-0", "fonts-dejavu-core", "ca-certificates"} <= set(debs), sorted(debs)
print(f"SBOM: {len(names)} Python components (CycloneDX {bom['specVersion']}), {len(debs)} Debian packages")
EOF

echo "image test passed: build ${build_seconds} s, image size ${size}; collect in the image: ${run_figures}, exit $rc"
