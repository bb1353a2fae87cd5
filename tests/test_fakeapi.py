"""The loopback API server (tests/fakeapi) against the real `kubernetes` client and kubectl, over verified TLS."""

from __future__ import annotations

import json
import shutil
import socket
import ssl
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import urllib3
from conftest import ROOT, SAMPLE
from fakeapi import EXPIRED_CONTINUE, FakeAPIServer
from kubernetes import client, config
from kubernetes.client import ApiClient
from kubernetes.client.rest import ApiException

from evidence.inventory import Inventory
from evidence.sources import snapshot

USER = "system:serviceaccount:auditpack:auditpack"
LIMITED = "system:serviceaccount:auditpack:limited"


@pytest.fixture(scope="module")
def server() -> Iterator[FakeAPIServer]:
    deny = {"limited": [("secrets", None), ("networkpolicies.networking.k8s.io", "payments")]}
    with FakeAPIServer(SAMPLE, tokens={"good": USER, "limited": LIMITED}, deny=deny) as srv:
        yield srv


@pytest.fixture
def srv(server: FakeAPIServer) -> Iterator[FakeAPIServer]:
    server.faults.clear()
    server.clear_requests()
    yield server
    server.faults.clear()


@pytest.fixture
def connect(srv: FakeAPIServer, tmp_path: Path) -> Iterator[Callable[..., ApiClient]]:
    """An ApiClient built the way users build one: from a kubeconfig the server wrote (CA data, bearer token)."""
    made: list[ApiClient] = []

    def make(token: str = "good", server: FakeAPIServer = srv) -> ApiClient:
        kubeconfig = server.write_kubeconfig(tmp_path / f"kubeconfig-{token}-{len(made)}", token=token)
        api = config.new_client_from_config(config_file=str(kubeconfig))
        made.append(api)
        return api

    yield make
    for api in made:
        api.close()


@pytest.fixture(scope="module")
def sample() -> Inventory:
    return snapshot.load(SAMPLE)  # the production snapshot reader: an independent view of the sample


def _names(objs: list[dict]) -> list[tuple[str, str]]:
    return sorted((o["metadata"].get("namespace", ""), o["metadata"]["name"]) for o in objs)


def test_discovery(connect: Callable[..., ApiClient]) -> None:
    api = connect()
    assert client.CoreApi(api).get_api_versions().versions == ["v1"]
    groups = {g.name: g for g in client.ApisApi(api).get_api_versions().groups}
    assert {"apps", "networking.k8s.io", "rbac.authorization.k8s.io", "cert-manager.io", "crd.projectcalico.org",
            "monitoring.coreos.com"} <= set(groups)
    assert groups["apps"].preferred_version.group_version == "apps/v1"
    assert client.VersionApi(api).get_code().git_version == "v1.31.4"  # from snapshot.json
    core = client.CoreV1Api(api).get_api_resources()
    pods = next(r for r in core.resources if r.name == "pods")
    assert (pods.kind, pods.namespaced, pods.singular_name, pods.verbs) == ("Pod", True, "pod", ["get", "list", "watch"])
    nodes = next(r for r in core.resources if r.name == "nodes")
    assert nodes.namespaced is False
    netpol = client.NetworkingV1Api(api).get_api_resources()
    assert {r.name for r in netpol.resources} >= {"networkpolicies", "ingresses", "ingressclasses"}


def test_paginated_list_returns_every_pod(srv: FakeAPIServer, connect: Callable[..., ApiClient],
                                          sample: Inventory) -> None:
    core = client.CoreV1Api(connect())
    seen, token, pages = [], None, 0
    while True:
        page = core.list_pod_for_all_namespaces(limit=2, _continue=token)
        pages += 1
        seen += [(p.metadata.namespace, p.metadata.name) for p in page.items]
        token = page.metadata._continue
        if not token:
            assert page.metadata.remaining_item_count is None
            break
        assert page.metadata.remaining_item_count == len(sample.objects("Pod", "")) - len(seen)
    expected = _names(sample.objects("Pod", ""))
    assert len(expected) > 10
    assert seen == expected  # every pod once, in (namespace, name) order
    assert pages == (len(expected) + 1) // 2
    assert [r.query.get("limit") for r in srv.requests_for("pods")] == ["2"] * pages


def test_raw_list_is_shaped_like_the_api_server(connect: Callable[..., ApiClient],
                                                sample: Inventory) -> None:
    core = client.CoreV1Api(connect())
    resp = core.list_namespaced_pod("payments", _preload_content=False)
    body = json.loads(resp.data)
    assert (body["kind"], body["apiVersion"]) == ("PodList", "v1")
    assert body["metadata"]["resourceVersion"].isdigit() and "continue" not in body["metadata"]
    assert body["items"] and all("kind" not in i and "apiVersion" not in i for i in body["items"])
    assert _names(body["items"]) == _names(sample.objects("Pod", "", namespace="payments"))
    ks = core.read_namespace("kube-system")
    assert ks.metadata.uid == "47304c3f-42fc-509c-97e8-9bd993ec0670"
    raw = json.loads(core.read_namespace("kube-system", _preload_content=False).data)
    assert (raw["kind"], raw["apiVersion"]) == ("Namespace", "v1")
    with pytest.raises(ApiException) as err:
        core.read_namespace("nope")
    assert err.value.status == 404 and json.loads(err.value.body)["reason"] == "NotFound"


def test_field_selector_lists_only_tls_secrets_unredacted(srv: FakeAPIServer, connect: Callable[..., ApiClient],
                                                         sample: Inventory) -> None:
    core = client.CoreV1Api(connect())
    tls = core.list_secret_for_all_namespaces(field_selector="type=kubernetes.io/tls")
    expected = [s for s in sample.objects("Secret", "") if s.get("type") == "kubernetes.io/tls"]
    assert expected and len(expected) < len(sample.objects("Secret", ""))
    assert {s.type for s in tls.items} == {"kubernetes.io/tls"}
    assert [(s.metadata.namespace, s.metadata.name) for s in tls.items] == _names(expected)
    assert all(s.data and "tls.crt" in s.data for s in tls.items)  # a real cluster: no redaction
    others = core.list_secret_for_all_namespaces(field_selector="type!=kubernetes.io/tls,metadata.namespace=payments")
    assert others.items and all(s.type != "kubernetes.io/tls" and s.metadata.namespace == "payments"
                                for s in others.items)
    pods = core.list_pod_for_all_namespaces(label_selector="app.kubernetes.io/name=ingress-nginx")
    assert pods.items and all(p.metadata.labels["app.kubernetes.io/name"] == "ingress-nginx" for p in pods.items)
    with pytest.raises(ApiException) as err:
        core.list_secret_for_all_namespaces(field_selector="data.password=x")
    assert err.value.status == 400 and "field label not supported" in json.loads(err.value.body)["message"]
    # the request log shows how Secrets were read
    assert [r.query.get("fieldSelector") for r in srv.requests_for("secrets")] == [
        "type=kubernetes.io/tls", "type!=kubernetes.io/tls,metadata.namespace=payments", "data.password=x"]


def test_forbidden_and_unauthorized_bodies(connect: Callable[..., ApiClient]) -> None:
    limited = client.CoreV1Api(connect("limited"))
    with pytest.raises(ApiException) as err:
        limited.list_secret_for_all_namespaces(field_selector="type=kubernetes.io/tls")
    assert err.value.status == 403
    assert json.loads(err.value.body) == {
        "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
        "message": f'secrets is forbidden: User "{LIMITED}" cannot list resource "secrets" in API group "" at the '
                   "cluster scope", "reason": "Forbidden", "details": {"kind": "secrets"}, "code": 403}
    assert limited.list_pod_for_all_namespaces().items  # other resources stay readable

    net = client.NetworkingV1Api(connect("limited"))
    with pytest.raises(ApiException) as err:
        net.list_namespaced_network_policy("payments")
    body = json.loads(err.value.body)
    assert body["message"] == (f'networkpolicies.networking.k8s.io is forbidden: User "{LIMITED}" cannot list '
                               'resource "networkpolicies" in API group "networking.k8s.io" in the namespace "payments"')
    assert body["details"] == {"group": "networking.k8s.io", "kind": "networkpolicies"}
    with pytest.raises(ApiException):
        net.list_network_policy_for_all_namespaces()  # would include payments
    assert net.list_namespaced_network_policy("storefront").items

    for token in ("wrong", ""):
        with pytest.raises(ApiException) as err:
            client.CoreV1Api(connect(token)).list_namespace()
        assert err.value.status == 401
        assert json.loads(err.value.body) == {"kind": "Status", "apiVersion": "v1", "metadata": {},
                                              "status": "Failure", "message": "Unauthorized",
                                              "reason": "Unauthorized", "code": 401}


def test_allow_list_and_authorize_callable(connect: Callable[..., ApiClient]) -> None:
    role = {"kind": "ClusterRole", "rules": [{"apiGroups": [""], "resources": ["pods", "namespaces"],
                                              "verbs": ["get", "list"]}]}
    calls: list[tuple] = []

    def authorize(user: str, verb: str, group: str, plural: str, namespace: str | None) -> bool:
        calls.append((user, verb, group, plural, namespace))
        return plural != "namespaces" or verb == "get"

    with FakeAPIServer(SAMPLE, tokens={"t": USER, "u": LIMITED}, allow={"t": role, "u": [("apps", "*", "list")]},
                       authorize=authorize) as other:
        core = client.CoreV1Api(connect("t", server=other))
        assert core.list_pod_for_all_namespaces().items
        assert core.read_namespace("kube-system").metadata.name == "kube-system"
        with pytest.raises(ApiException) as err:
            core.list_namespace()  # allowed by the role, refused by the callable
        assert err.value.status == 403
        with pytest.raises(ApiException) as err:
            core.list_service_for_all_namespaces()  # not in the role
        assert err.value.status == 403
        apps = client.AppsV1Api(connect("u", server=other))
        assert apps.list_deployment_for_all_namespaces().items
        with pytest.raises(ApiException):
            client.CoreV1Api(connect("u", server=other)).list_pod_for_all_namespaces()
    assert ("system:serviceaccount:auditpack:auditpack", "get", "", "namespaces", "kube-system") in calls


def test_throttle_burst_then_success(srv: FakeAPIServer, connect: Callable[..., ApiClient]) -> None:
    fault = srv.faults.throttle("pods", times=2, retry_after=0)
    core = client.CoreV1Api(connect())
    assert core.list_pod_for_all_namespaces(limit=5).items  # urllib3 honours Retry-After on 429 by itself
    assert [r.status for r in srv.requests_for("pods")] == [429, 429, 200]
    assert (fault.seen, fault.fired) == (3, 2)

    srv.faults.throttle("/api/v1/namespaces", times=None, retry_after=0)  # forever: the client gives up
    with pytest.raises(ApiException) as err:
        core.list_namespace()
    assert err.value.status == 429 and err.value.headers["Retry-After"] == "0"
    assert json.loads(err.value.body)["reason"] == "TooManyRequests"


def test_server_errors_and_delays(srv: FakeAPIServer, connect: Callable[..., ApiClient]) -> None:
    core = client.CoreV1Api(connect())
    srv.faults.fail("nodes.", times=1, skip=1)
    srv.faults.delay("services", seconds=0.3)
    assert core.list_node().items
    with pytest.raises(ApiException) as err:
        core.list_node()
    assert err.value.status == 500 and json.loads(err.value.body)["reason"] == "InternalError"
    assert core.list_node().items
    started = time.perf_counter()
    core.list_service_for_all_namespaces()
    assert time.perf_counter() - started >= 0.3
    assert [r.status for r in srv.requests_for("nodes")] == [200, 500, 200]
    assert srv.requests_for("services")[0].duration >= 0.3


def test_stale_continue_token_is_410(srv: FakeAPIServer, connect: Callable[..., ApiClient],
                                     sample: Inventory) -> None:
    core = client.CoreV1Api(connect())
    srv.faults.expire_continue("pods", nth=2)
    first = core.list_pod_for_all_namespaces(limit=3)
    second = core.list_pod_for_all_namespaces(limit=3, _continue=first.metadata._continue)
    with pytest.raises(ApiException) as err:
        core.list_pod_for_all_namespaces(limit=3, _continue=second.metadata._continue)
    assert err.value.status == 410
    body = json.loads(err.value.body)
    assert (body["reason"], body["code"], body["message"]) == ("Expired", 410, EXPIRED_CONTINUE)
    # as kube-apiserver does, the Status offers a token to continue inconsistently
    rest = core.list_pod_for_all_namespaces(_continue=body["metadata"]["continue"])
    names = [(p.metadata.namespace, p.metadata.name) for p in [*first.items, *second.items, *rest.items]]
    assert names == _names(sample.objects("Pod", ""))
    # once: retrying the same token works
    assert core.list_pod_for_all_namespaces(limit=3, _continue=second.metadata._continue).items

    srv.expire_continue_tokens()  # compaction: every earlier token is stale
    with pytest.raises(ApiException) as err:
        core.list_pod_for_all_namespaces(limit=3, _continue=first.metadata._continue)
    assert err.value.status == 410
    with pytest.raises(ApiException) as err:
        core.list_pod_for_all_namespaces(limit=3, _continue="garbage!")
    assert err.value.status == 400


def test_custom_resources(connect: Callable[..., ApiClient]) -> None:
    custom = client.CustomObjectsApi(connect())
    felix = custom.list_cluster_custom_object("crd.projectcalico.org", "v1", "felixconfigurations")
    assert felix["kind"] == "FelixConfigurationList"
    assert [i["metadata"]["name"] for i in felix["items"]] == ["default"]
    assert felix["items"][0]["kind"] == "FelixConfiguration"  # custom resources keep kind in lists, as for real
    certs = custom.list_namespaced_custom_object("cert-manager.io", "v1", "payments", "certificates")
    assert all(c["metadata"]["namespace"] == "payments" for c in certs["items"])
    with pytest.raises(ApiException) as err:
        custom.list_cluster_custom_object("gateway.networking.k8s.io", "v1", "gateways")
    assert err.value.status == 404


def test_programmatic_objects_extra_and_unserved_types(connect: Callable[..., ApiClient]) -> None:
    objects = [{"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": f"ns{i}"}} for i in range(3)]
    objects.append({"apiVersion": "example.com/v1alpha1", "kind": "Widget",
                    "metadata": {"name": "w", "namespace": "ns1"}})
    objects.append({"apiVersion": "cert-manager.io/v1", "kind": "ClusterIssuer", "metadata": {"name": "ca"}})
    with FakeAPIServer(objects=objects, extra_types=["gateways.gateway.networking.k8s.io"],
                       unserved_groups=["cert-manager.io"], version="v1.29.3", item_type_meta="omit") as other:
        api = connect(server=other)
        groups = {g.name: g for g in client.ApisApi(api).get_api_versions().groups}
        assert set(groups) == {"example.com", "gateway.networking.k8s.io"}
        assert [v.version for v in groups["gateway.networking.k8s.io"].versions] == ["v1", "v1beta1"]
        custom = client.CustomObjectsApi(api)
        assert custom.list_cluster_custom_object("gateway.networking.k8s.io", "v1", "gateways")["items"] == []
        widgets = custom.list_cluster_custom_object("example.com", "v1alpha1", "widgets")
        assert widgets["items"] == [{"metadata": {"name": "w", "namespace": "ns1"}}]
        assert custom.get_namespaced_custom_object("example.com", "v1alpha1", "ns1", "widgets", "w")["kind"] == "Widget"
        assert [n.metadata.name for n in client.CoreV1Api(api).list_namespace().items] == ["ns0", "ns1", "ns2"]
        assert client.VersionApi(api).get_code().minor == "29"


def test_tls_certificate_is_verifiable(srv: FakeAPIServer) -> None:
    ctx = ssl.create_default_context(cadata=srv.ca_pem.decode())
    for host in ("127.0.0.1", "localhost"):
        with socket.create_connection(("127.0.0.1", srv.port)) as raw, \
                ctx.wrap_socket(raw, server_hostname=host) as tls:
            tls.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            assert tls.recv(100).startswith(b"HTTP/1.1 200")
    other = ssl.create_default_context()
    with socket.create_connection(("127.0.0.1", srv.port)) as raw, pytest.raises(ssl.SSLCertVerificationError):
        other.wrap_socket(raw, server_hostname="127.0.0.1")


@pytest.mark.skipif(shutil.which("kubectl") is None, reason="kubectl is not installed")
def test_kubectl_lists_pods(srv: FakeAPIServer, tmp_path: Path, sample: Inventory) -> None:
    kubeconfig = srv.write_kubeconfig(tmp_path / "kubeconfig")
    proc = subprocess.run(["kubectl", "--kubeconfig", str(kubeconfig), "--cache-dir", str(tmp_path / "cache"),
                           "get", "pods", "-A", "-o", "json"], capture_output=True, text=True, timeout=60, check=False)
    assert proc.returncode == 0, proc.stderr
    items = json.loads(proc.stdout)["items"]
    assert len(items) == len(sample.objects("Pod", ""))
    assert {i["kind"] for i in items} == {"Pod"}  # kubectl re-adds kind to list items, as with a real server
    assert any(r.path == "/api/v1/pods" and r.query.get("limit") == "500" for r in srv.requests)


def test_command_line_server(tmp_path: Path) -> None:
    kubeconfig = tmp_path / "kubeconfig"
    proc = subprocess.Popen([sys.executable, "-m", "tests.fakeapi", "serve", str(SAMPLE), "--kubeconfig",
                             str(kubeconfig), "--token", "bench"], cwd=ROOT, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert line.startswith("READY https://127.0.0.1:"), proc.stderr.read() if proc.stderr else ""
        with config.new_client_from_config(config_file=str(kubeconfig)) as api:
            assert client.CoreV1Api(api).read_namespace("kube-system").metadata.name == "kube-system"
    finally:
        proc.terminate()
        proc.communicate(timeout=10)
    assert proc.returncode == 0


def test_self_subject_review_roles_with_resource_names_hang_and_die(connect: Callable[..., ApiClient]) -> None:
    """The pieces issue 14's live tests rely on, through the real client: SelfSubjectReview, namespaced Roles with
    resourceNames in an allow-list, a hung request, and a server that dies."""
    review = client.AuthenticationV1Api(connect()).create_self_subject_review(
        client.V1SelfSubjectReview(api_version="authentication.k8s.io/v1", kind="SelfSubjectReview"))
    assert review.status.user_info.username == USER
    assert review.status.user_info.groups == ["system:serviceaccounts", "system:serviceaccounts:auditpack",
                                              "system:authenticated"]
    role = {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role",
            "metadata": {"name": "tls", "namespace": "payments"},
            "rules": [{"apiGroups": [""], "resources": ["secrets"], "resourceNames": ["pay-example-tls"],
                       "verbs": ["get"]}]}
    with FakeAPIServer(SAMPLE, tokens={"good": USER}, allow={"good": [role]}) as srv:
        core = client.CoreV1Api(connect(server=srv))
        assert core.read_namespaced_secret("pay-example-tls", "payments").type == "kubernetes.io/tls"
        for forbidden in (lambda: core.read_namespaced_secret("payments-db", "payments"),
                          lambda: core.list_namespaced_secret("payments"),
                          lambda: core.read_namespaced_secret("pay-example-tls", "storefront")):
            with pytest.raises(ApiException) as denied:
                forbidden()
            assert denied.value.status == 403
        srv.faults.hang("pods", times=None, seconds=30)
        started = time.monotonic()
        with pytest.raises(urllib3.exceptions.HTTPError, match=r"(?i)timed out"):
            core.list_pod_for_all_namespaces(_request_timeout=(2, 1))
        assert time.monotonic() - started < 15  # the client's own retries included
        srv.faults.die("services")
        with pytest.raises(urllib3.exceptions.HTTPError):
            core.list_service_for_all_namespaces(_request_timeout=(2, 5))
        deadline = time.monotonic() + 10
        while srv.url and time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", srv.port), timeout=1).close()
            except OSError:
                break  # refused: the server is gone
            time.sleep(0.1)
        else:
            raise AssertionError("the server still accepts connections after die()")
