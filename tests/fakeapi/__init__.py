"""A loopback Kubernetes API server (HTTPS, tokens, RBAC-like denials, pagination, faults) for tests and benchmarks.

    with FakeAPIServer(SAMPLE, tokens={"good": "system:serviceaccount:auditpack:auditpack"}) as srv:
        kubeconfig = srv.write_kubeconfig(tmp_path / "kubeconfig")
        srv.faults.throttle("pods", times=2, retry_after=0)
        ...
        assert [r.status for r in srv.requests_for("pods")] == [429, 429, 200]

`python -m tests.fakeapi serve DIR --kubeconfig OUT` runs one in the foreground.
"""

from .server import (
    DEFAULT_USER,
    DEFAULT_VERSION,
    EXPIRED_CONTINUE,
    FakeAPIServer,
    Fault,
    FaultPlan,
    Request,
    ServedType,
    describe_type,
    guess_plural,
    load_snapshot,
    status_body,
    synthetic_pods,
)

__all__ = ["DEFAULT_USER", "DEFAULT_VERSION", "EXPIRED_CONTINUE", "FakeAPIServer", "Fault", "FaultPlan", "Request",
           "ServedType", "describe_type", "guess_plural", "load_snapshot", "status_body", "synthetic_pods"]
