"""Redaction unit by unit: the allow-list, fingerprints, masks, parsed configs, linear time (the end-to-end search of
every pack byte is tests/test_security_redaction.py)."""

from __future__ import annotations

import base64
import datetime as dt
import json

import yaml
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from evidence.redact import MASK, Redactor, fingerprint

SECRET_VALUES = ["s3cr3t-opaque-VALUE-1", "hunter2-ENV-password-2", "string-data-TOKEN-3", "cm-db-PASSWORD-4",
                 "argv-client-SECRET-5", "last-applied-LEAK-6"]
JWT = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJhdWRpdHBhY2stdGVzdCJ9.c2lnbmF0dXJlLXRlc3Q"


def _key_and_cert() -> tuple[str, str]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "leak.example.com")])
    now = dt.datetime(2026, 11, 1, tzinfo=dt.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(1).not_valid_before(now).not_valid_after(now + dt.timedelta(days=90))
            .sign(key, hashes.SHA256()))
    key_pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption()).decode()
    return key_pem, cert.public_bytes(serialization.Encoding.PEM).decode()


def b64(s: str) -> str:
    return base64.b64encode(s.encode()).decode()


def leaky_objects(key_pem: str, cert_pem: str) -> list[dict]:
    last_applied = json.dumps({"kind": "Secret", "data": {"password": b64(SECRET_VALUES[5])},
                               "stringData": {"raw": SECRET_VALUES[5]}})
    return [
        {"apiVersion": "v1", "kind": "Secret", "type": "kubernetes.io/tls",
         "metadata": {"name": "leaky-tls", "namespace": "storefront",
                      "annotations": {"kubectl.kubernetes.io/last-applied-configuration": last_applied},
                      "managedFields": [{"manager": "kubectl", "fieldsV1": {"f:data": {}}}]},
         # A key pasted into tls.crt too: only the CERTIFICATE block may survive.
         "data": {"tls.crt": b64(cert_pem + key_pem), "tls.key": b64(key_pem), "ca.crt": b64(cert_pem)}},
        {"apiVersion": "v1", "kind": "Secret", "type": "Opaque",
         "metadata": {"name": "app-creds", "namespace": "storefront"},
         "data": {"password": b64(SECRET_VALUES[0]), "key.pem": b64(key_pem)},
         "stringData": {"token": SECRET_VALUES[2]}},
        {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "app-config", "namespace": "storefront"},
         "data": {"DB_PASSWORD": SECRET_VALUES[3], "bearer": JWT, "signing.pem": key_pem, "LOG_LEVEL": "info"}},
        {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "leaky", "namespace": "storefront"},
         "spec": {"selector": {"matchLabels": {"app": "leaky"}}, "template": {
             "metadata": {"labels": {"app": "leaky"}},
             "spec": {"containers": [{"name": "app", "image": "example/app:1",
                                      "args": [f"--client-secret={SECRET_VALUES[4]}", "--port=8080"],
                                      "env": [{"name": "DB_PASSWORD", "value": SECRET_VALUES[1]},
                                              {"name": "SESSION", "value": JWT},
                                              {"name": "LOG_LEVEL", "value": "debug"}]}]}}}},
    ]


def test_redactor_unit() -> None:
    key_pem, cert_pem = _key_and_cert()
    r = Redactor()
    secret, opaque, cm, deploy = (r.redact(o) for o in leaky_objects(key_pem, cert_pem))
    assert set(secret["data"]) == {"tls.crt", "ca.crt"}
    assert base64.b64decode(secret["data"]["tls.crt"]).decode().strip() == cert_pem.strip()
    assert "managedFields" not in secret["metadata"]
    assert "kubectl.kubernetes.io/last-applied-configuration" not in secret["metadata"]["annotations"]
    assert "data" not in opaque and "stringData" not in opaque
    assert cm["data"]["DB_PASSWORD"] == MASK and cm["data"]["bearer"] == MASK and cm["data"]["signing.pem"] == MASK
    assert cm["data"]["LOG_LEVEL"] == fingerprint("info") == "<fingerprint: 4 chars>"  # free text, not allow-listed
    c = deploy["spec"]["template"]["spec"]["containers"][0]
    assert c["args"] == [f"--client-secret={MASK}", "--port=<fingerprint: 4 chars>"]
    assert [e["value"] for e in c["env"]] == [MASK, MASK, "<fingerprint: 5 chars>"]
    assert r.counts["secret values"] >= 4


# --- the allow-list redactor, piece by piece (issue 11 section 1) -------------------------------------------------

def _deploy(container: dict, annotations: dict | None = None) -> dict:
    return {"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "d", "namespace": "ns", "annotations": dict(annotations or {})},
            "spec": {"template": {"metadata": {"annotations": {
                "kubectl.kubernetes.io/last-applied-configuration": '{"password": "tpl-LEAK"}',
                "sidecar.istio.io/inject": "true", "note": "free text"},
                "managedFields": [{"manager": "x"}]},
                "spec": {"containers": [{"name": "c", "image": "i", **container}]}}}}


def _container(obj: dict) -> dict:
    return obj["spec"]["template"]["spec"]["containers"][0]


def test_fingerprint_keeps_length_and_hashes_only_long_values() -> None:
    import hashlib
    assert fingerprint("hunter2") == "<fingerprint: 7 chars>"  # short: a hash would confirm a guessed password
    long = "x" * 64
    assert fingerprint(long) == f"<fingerprint: 64 chars, sha256:{hashlib.sha256(long.encode()).hexdigest()}>"
    assert fingerprint(b"\x00\x01") == "<fingerprint: 2 bytes>"


def test_split_form_args_shell_strings_and_allow_listed_flags() -> None:
    obj = Redactor().redact(_deploy({
        "command": ["/nginx-ingress-controller"],
        "args": ["--db-password", "Split-Form-Pw-1", "--configmap=$(POD_NAMESPACE)/ingress-nginx-controller",
                 "--ingress-class", "nginx", "-pGlued-Pw-2", "positional-word", "--tls-private-key-file=/k/tls.key"],
        "env": [{"name": "POD_NAMESPACE", "value": "ingress-nginx"}, {"name": "STRIPE_KEY", "value": "sk9x7"},
                {"name": "ENCRYPTION_KEY", "value": "enc-key-literal"}, {"name": "GREETING", "value": "hello"}]}))
    c = _container(obj)
    assert c["command"] == ["/nginx-ingress-controller"]
    assert c["args"] == ["--db-password", MASK, "--configmap=$(POD_NAMESPACE)/ingress-nginx-controller",
                         "--ingress-class", "nginx", "<fingerprint: 12 chars>", "<fingerprint: 15 chars>",
                         "--tls-private-key-file=/k/tls.key"]
    # POD_NAMESPACE is referenced by an allow-listed flag value, so the controller's ConfigMap can be resolved.
    assert [e["value"] for e in c["env"]] == ["ingress-nginx", MASK, MASK, "<fingerprint: 5 chars>"]
    shell = Redactor().redact(_deploy({"command": ["sh", "-c", "mysql -uroot -pShell-Pw-3 db"]}))
    assert _container(shell)["command"][:2] == ["sh", "-c"]
    assert "Shell-Pw-3" not in json.dumps(shell)


def test_annotations_at_every_depth_and_allow_listed_ones_still_masked() -> None:
    obj = Redactor().redact(_deploy({}, annotations={
        "nginx.ingress.kubernetes.io/auth-url": "https://user:Pw-In-Url-4@auth.example.com/check",
        "nginx.ingress.kubernetes.io/ssl-redirect": "true",
        "nginx.ingress.kubernetes.io/configuration-snippet": 'proxy_set_header Authorization "Bearer abcdefghijklmnop";',
        "openshift.io/token-secret.value": "sha256~AbCdEfGhIjKlMnOpQrStUvWxYz0123456789",
        "description": "owned by the payments team"}))
    ann = obj["metadata"]["annotations"]
    assert ann["nginx.ingress.kubernetes.io/auth-url"] == MASK
    assert ann["nginx.ingress.kubernetes.io/ssl-redirect"] == "true"
    assert ann["nginx.ingress.kubernetes.io/configuration-snippet"] == MASK
    assert ann["openshift.io/token-secret.value"] == MASK
    assert ann["description"] == "<fingerprint: 26 chars>"
    tpl = obj["spec"]["template"]["metadata"]
    assert "managedFields" not in tpl and "kubectl.kubernetes.io/last-applied-configuration" not in tpl["annotations"]
    assert tpl["annotations"]["sidecar.istio.io/inject"] == "true"
    assert tpl["annotations"]["note"] == "<fingerprint: 9 chars>"


def test_probe_headers_and_exec_commands_are_free_text() -> None:
    probe = {"httpGet": {"path": "/healthz", "port": 8080,
                         "httpHeaders": [{"name": "Authorization", "value": "Probe-Header-Secret-5"},
                                         {"name": "X-Trace", "value": "on"}]}}
    obj = Redactor().redact(_deploy({"livenessProbe": probe, "readinessProbe": {
        "exec": {"command": ["sh", "-c", "curl -u admin:Exec-Pw-6 localhost"]}},
        "lifecycle": {"preStop": {"httpGet": {"path": "/", "port": 1,
                                              "httpHeaders": [{"name": "X-Key", "value": "Hook-Key-7"}]}}}}))
    c = _container(obj)
    headers = c["livenessProbe"]["httpGet"]["httpHeaders"]
    assert [h["name"] for h in headers] == ["Authorization", "X-Trace"]
    assert headers[0]["value"] == MASK and headers[1]["value"] == "<fingerprint: 2 chars>"
    assert c["livenessProbe"]["httpGet"]["path"] == "/healthz"
    text = json.dumps(obj)
    assert "Exec-Pw-6" not in text and "Hook-Key-7" not in text


def test_parsed_configs_keep_what_collectors_read() -> None:
    loki = ("auth_enabled: false\ncompactor:\n  retention_enabled: true\nlimits_config:\n  retention_period: 30d\n"
            "storage_config:\n  aws:\n    access_key_id: AKIAABCDEFGHIJKLMNOP\n    secret_access_key: Loki-Secret-8\n"
            "    bucketnames: logs-bucket\n")
    oauth = ('provider = "oidc"\nemail_domains = ["example.com"]\nclient_secret = "Oauth-Client-Secret-9"\n'
             'cookie_secret = "Oauth-Cookie-Secret-10"\nupstreams = ["http://app:8080"]\n')
    fluent = ("[SERVICE]\n    Flush 1\n[OUTPUT]\n    Name es\n    Host es.example.com\n"
              "    HTTP_Passwd Fluent-Pw-11\n")
    props = "db.url=jdbc:postgresql://db/app\ndb.user=app\ndb.password=Props-Pw-12\n"
    cm = Redactor().redact({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c", "namespace": "n"},
                            "data": {"config.yaml": loki, "oauth2_proxy.cfg": oauth, "fluent-bit.conf": fluent,
                                     "app.properties": props, "settings": "password=Single-Line-13",
                                     "hsts": "false"},
                            "binaryData": {"blob": b64("just bytes")}})
    d = cm["data"]
    got = yaml.safe_load(d["config.yaml"])
    assert got["compactor"]["retention_enabled"] is True and got["limits_config"]["retention_period"] == "30d"
    assert got["storage_config"]["aws"]["secret_access_key"] == MASK
    assert got["storage_config"]["aws"]["access_key_id"] == MASK
    assert got["storage_config"]["aws"]["bucketnames"] == "<fingerprint: 11 chars>"
    import tomllib
    toml = tomllib.loads(d["oauth2_proxy.cfg"])
    assert toml["email_domains"] == ["example.com"] and toml["provider"] == "oidc"
    assert toml["client_secret"] == MASK and toml["cookie_secret"] == MASK
    assert "[OUTPUT]" in d["fluent-bit.conf"] and "Fluent-Pw-11" not in d["fluent-bit.conf"]
    assert d["app.properties"] == MASK and d["settings"] == MASK and d["hsts"] == "false"
    assert cm["binaryData"]["blob"] == "<fingerprint: 10 bytes>"


def test_secret_of_any_api_version_and_binary_private_key() -> None:
    key_pem, _ = _key_and_cert()
    r = Redactor()
    odd = r.redact({"apiVersion": "v1beta1", "kind": "Secret", "metadata": {"name": "s"},
                    "data": {"k": b64(key_pem)}, "stringData": {"p": "x"}})
    assert "data" not in odd and "stringData" not in odd
    other = r.redact({"apiVersion": "example.com/v1", "kind": "Secret", "metadata": {"name": "s"},
                      "data": {"k": b64(key_pem)}})
    assert "data" not in other
    cm = r.redact({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"},
                   "binaryData": {"key.pem": b64(key_pem)}})
    assert cm["binaryData"]["key.pem"] == MASK


def test_custom_resources_keep_only_what_controls_read() -> None:
    r = Redactor()
    prom = r.redact({"apiVersion": "monitoring.coreos.com/v1", "kind": "Prometheus",
                     "metadata": {"name": "p", "namespace": "m"},
                     "spec": {"retention": "30d", "ruleSelector": {"matchLabels": {"team": "sec"}},
                              "remoteWrite": [{"url": "https://metrics.example.com",
                                               "bearerToken": "Remote-Write-Token-14"}]}})
    assert prom["spec"]["retention"] == "30d" and prom["spec"]["ruleSelector"] == {"matchLabels": {"team": "sec"}}
    assert prom["spec"]["remoteWrite"][0]["bearerToken"] == MASK
    assert prom["spec"]["remoteWrite"][0]["url"] == "<fingerprint: 27 chars>"
    rule = r.redact({"apiVersion": "monitoring.coreos.com/v1", "kind": "PrometheusRule", "metadata": {"name": "r"},
                     "spec": {"groups": [{"name": "g", "rules": [{"alert": "A", "expr": "up == 0",
                                                                  "annotations": {"runbook": "call 555"}}]}]}})
    rr = rule["spec"]["groups"][0]["rules"][0]
    assert (rr["alert"], rr["expr"], rr["annotations"]["runbook"]) == ("A", "up == 0", "<fingerprint: 8 chars>")
    unknown = r.redact({"apiVersion": "vendor.example.com/v1", "kind": "Widget", "metadata": {"name": "w",
                        "labels": {"app": "w"}}, "spec": {"dsn": "Vendor-Dsn-15", "replicas": 2,
                                                          "nested": {"note": "anything"}}})
    assert unknown["metadata"] == {"name": "w", "labels": {"app": "w"}}
    assert unknown["spec"] == {"dsn": MASK, "replicas": 2, "nested": {"note": "<fingerprint: 8 chars>"}}


def test_redaction_is_idempotent() -> None:
    """`auditpack snapshot` writes the redacted inventory; reading it back must give the same objects."""
    key_pem, cert_pem = _key_and_cert()
    once = [Redactor().redact(o) for o in leaky_objects(key_pem, cert_pem)]
    twice = [Redactor().redact(json.loads(json.dumps(o))) for o in once]
    assert once == twice


def test_yaml_alias_bomb_is_fingerprinted_not_expanded() -> None:
    import time
    bomb = "a: &a [\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\"]\n" + "".join(
        f"{chr(98 + i)}: &{chr(98 + i)} [*{chr(97 + i)},*{chr(97 + i)},*{chr(97 + i)},*{chr(97 + i)},"
        f"*{chr(97 + i)},*{chr(97 + i)},*{chr(97 + i)},*{chr(97 + i)},*{chr(97 + i)}]\n" for i in range(8))
    start = time.perf_counter()
    cm = Redactor().redact({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"},
                            "data": {"bomb.yaml": bomb}})
    assert time.perf_counter() - start < 1.0
    assert cm["data"]["bomb.yaml"].startswith("<fingerprint: ")


def test_allow_lists_cover_what_oauth2_proxy_reads() -> None:
    from evidence.collectors import oauth2proxy
    from evidence.redact import CONFIG_KEEP, ENV_NAMES, FLAGS
    flags = {*oauth2proxy.BOOLS, *oauth2proxy.STRINGS, *oauth2proxy.LISTS, "config", "alpha-config"}
    assert flags <= FLAGS
    names = {cfg for cfg, _ in (*oauth2proxy.BOOLS.values(), *oauth2proxy.STRINGS.values())} | set(
        oauth2proxy.LISTS.values())
    assert {f"OAUTH2_PROXY_{n.upper()}" for n in names} <= ENV_NAMES
    # booleans are kept anyway; every string/list setting of the TOML config must be on the config allow-list
    assert {cfg for cfg, _ in oauth2proxy.STRINGS.values()} | set(oauth2proxy.LISTS.values()) <= set(CONFIG_KEEP)


def test_worst_case_inputs_take_linear_time() -> None:
    """The old URL pattern was quadratic (a 100 KB lowercase value took 85 s). 1 MiB adversarial values now."""
    import time
    mib = 1 << 20
    for value in ("a" * mib, ("a://a" * (mib // 5)), ("-----BEGIN " * (mib // 11)), ("QUJD" * (mib // 4)),
                  ("eyJ" * (mib // 3)), ("password=" * (mib // 9)), (":" + "a" * 255) * (mib // 256)):
        start = time.perf_counter()
        r = Redactor()
        r.redact({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c", "annotations": {"a": value}},
                  "data": {"k": value, "one": value.replace("\n", "")}})
        assert time.perf_counter() - start < 5.0, value[:20]


def test_kubeadm_extra_args_traefik_flags_and_k3s_node_args() -> None:
    r = Redactor()
    v3 = yaml.safe_dump({"apiVersion": "kubeadm.k8s.io/v1beta3", "kind": "ClusterConfiguration", "apiServer": {
        "extraArgs": {"audit-policy-file": "/etc/k/audit.yaml", "oidc-client-secret-x": "Kubeadm-Secret-16"}}})
    v4 = yaml.safe_dump({"apiVersion": "kubeadm.k8s.io/v1beta4", "kind": "ClusterConfiguration", "apiServer": {
        "extraArgs": [{"name": "audit-log-path", "value": "/var/log/a.log"}, {"name": "x", "value": "Kubeadm-17"}]}})
    cm = r.redact({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "kubeadm-config"},
                   "data": {"ClusterConfiguration": v3, "v4": v4}})
    got3, got4 = (yaml.safe_load(cm["data"][k]) for k in ("ClusterConfiguration", "v4"))
    assert got3["apiVersion"] == "kubeadm.k8s.io/v1beta3"
    assert got3["apiServer"]["extraArgs"] == {"audit-policy-file": "/etc/k/audit.yaml", "oidc-client-secret-x": MASK}
    assert got4["apiServer"]["extraArgs"] == [{"name": "audit-log-path", "value": "/var/log/a.log"},
                                              {"name": "x", "value": "<fingerprint: 10 chars>"}]
    traefik = r.redact(_deploy({"args": ["--entryPoints.web.address=:8000",
                                         "--entryPoints.web.http.redirections.entryPoint.to=websecure",
                                         "--providers.kubernetescrd.token=Traefik-Tok-18"]}))
    assert _container(traefik)["args"][:2] == ["--entryPoints.web.address=:8000",
                                                "--entryPoints.web.http.redirections.entryPoint.to=websecure"]
    assert _container(traefik)["args"][2] == f"--providers.kubernetescrd.token={MASK}"
    node = r.redact({"apiVersion": "v1", "kind": "Node", "metadata": {"name": "n", "annotations": {
        "k3s.io/node-args": json.dumps(["server", "--flannel-backend", "wireguard-native", "--token", "K3s-Tok-19"])}}})
    assert json.loads(node["metadata"]["annotations"]["k3s.io/node-args"]) == [
        "server", "--flannel-backend", "wireguard-native", "--token", MASK]


FLUENTD_CONF = """@include "#{ENV['FLUENTD_SYSTEMD_CONF'] || 'systemd'}.conf"
@include kubernetes.conf
<label @FLUENT_LOG>
  <match fluent.**>
    @type null
    @id ignore_fluent_logs
  </match>
</label>
<match **>
   @type copy
   <store>
     @type elasticsearch
     @id out_es
     host "#{ENV['FLUENT_ELASTICSEARCH_HOST']}"
     port 9200
     scheme https
     ssl_verify true
     user elastic
     password Fluentd-Es-Pw-21
     <buffer>      # flush often
       flush_interval 5s
       retry_forever
     </buffer>
   </store>
   <store>
     @type forward
     transport tls
     <server>
       host fluentd-aggregator.logging.svc
       port 24224
     </server>
     <security>
       self_hostname fluentd
       shared_key Fluentd-Shared-Key-22
     </security>
   </store>
</match>
"""


def test_fluentd_config_round_trips_through_the_redactor() -> None:
    """The redacted text of a Fluentd config parses back to the same directives, nesting and kept settings
    (before, a fingerprinted `<match **>` argument and the flattened `</buffer>` lost every <match>)."""
    from evidence.redact import parse_config
    r = Redactor()
    cm = r.redact({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "fluentd", "namespace": "logging"},
                   "data": {"fluent.conf": FLUENTD_CONF}})
    text = cm["data"]["fluent.conf"]
    assert "Fluentd-Es-Pw-21" not in json.dumps(cm) and "Fluentd-Shared-Key-22" not in json.dumps(cm)
    fmt, original = parse_config(FLUENTD_CONF)
    fmt2, back = parse_config(text)
    assert fmt == fmt2 == "sections"
    assert back == r._config_tree(original, ())  # exactly what the redactor kept, in the same structure
    (label,) = back["<label>"]
    assert label["<match>"][0]["@type"] == "null"
    (match,) = back["<match>"]
    es, fwd = match["<store>"]
    assert match["@type"] == "copy" and es["@type"] == "elasticsearch" and fwd["@type"] == "forward"
    assert es["host"] == "\"#{ENV['FLUENT_ELASTICSEARCH_HOST']}\"" and es["scheme"] == "https"
    assert (es["port"], es["ssl_verify"]) == ("9200", "true") and es["password"] == MASK
    assert list(es["<buffer>"][0]) == ["flush_interval", "@lines"]  # the <buffer> stays inside its <store>
    assert fwd["transport"] == "tls" and fwd["<server>"] == [{"host": "fluentd-aggregator.logging.svc",
                                                               "port": "24224"}]
    assert fwd["<security>"][0]["shared_key"] == MASK
    assert Redactor()._config_text("fluent.conf", text) == text  # idempotent: a snapshot reads back the same
    # Fluent Bit classic sections still round-trip flat
    fb = "[SERVICE]\n    Flush 1\n[OUTPUT]\n    Name es\n    Host es.example.com\n    tls On\n"
    fb_text = Redactor()._config_text("fluent-bit.conf", fb)
    assert parse_config(fb_text)[1]["[OUTPUT]"] == [{"Name": "es", "Host": "es.example.com", "tls": "On"}]
