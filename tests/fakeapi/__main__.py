"""`python -m tests.fakeapi serve [DIR] [--port P] [--kubeconfig OUT] [--token T] ...`: serve in the foreground.

Prints `READY <url>` on stdout once listening (benchmarks wait for that line); stops on SIGINT/SIGTERM.
"""

from __future__ import annotations

import argparse
import contextlib
import signal
import sys
from pathlib import Path
from typing import Any

from .server import DEFAULT_USER, FakeAPIServer, synthetic_pods


def _deny_rule(text: str) -> tuple[str, tuple[str, str | None]]:
    # TOKEN=PLURAL[.GROUP][@NAMESPACE]
    token, _, rest = text.partition("=")
    resource, _, namespace = rest.partition("@")
    if not token or not resource:
        raise argparse.ArgumentTypeError("--deny takes TOKEN=PLURAL[.GROUP][@NAMESPACE]")
    return token, (resource, namespace or None)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.fakeapi", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    serve = sub.add_parser("serve", help="serve a snapshot directory over HTTPS on 127.0.0.1")
    serve.add_argument("snapshot", nargs="?", type=Path, help="directory of YAML/JSON objects")
    serve.add_argument("--port", type=int, default=0, help="port on 127.0.0.1 (default: a free one)")
    serve.add_argument("--kubeconfig", type=Path, help="write a kubeconfig for the server here")
    serve.add_argument("--token", default="good", help="bearer token accepted (and written to the kubeconfig)")
    serve.add_argument("--user", default=DEFAULT_USER, help="user name the token authenticates as")
    serve.add_argument("--deny", action="append", type=_deny_rule, default=[], metavar="TOKEN=PLURAL[@NS]",
                       help="forbid a resource to a token (repeatable)")
    serve.add_argument("--extra-type", action="append", default=[], metavar="PLURAL.GROUP",
                       help="serve a catalogue type with no objects (repeatable)")
    serve.add_argument("--unserved-group", action="append", default=[], metavar="GROUP",
                       help="do not serve this API group (repeatable)")
    serve.add_argument("--version", help="gitVersion for /version (default: snapshot.json's, or v1.31.4)")
    serve.add_argument("--synthetic-pods", type=int, default=0, metavar="N",
                       help="also serve N generated Pods (~--pod-size bytes each)")
    serve.add_argument("--pod-size", type=int, default=12_000)
    serve.add_argument("--verbose", action="store_true", help="log every request on stderr")
    args = parser.parse_args(argv)

    if args.snapshot is None and not args.synthetic_pods:
        parser.error("give a snapshot directory or --synthetic-pods N")
    deny: dict[str, list[Any]] = {}
    for token, rule in args.deny:
        deny.setdefault(token, []).append(rule)
    srv = FakeAPIServer(args.snapshot, objects=synthetic_pods(args.synthetic_pods, args.pod_size),
                        tokens={args.token: args.user}, deny=deny, extra_types=args.extra_type,
                        unserved_groups=args.unserved_group, version=args.version, port=args.port,
                        verbose=args.verbose)

    def _stop(signum: int, frame: Any) -> None:
        raise SystemExit(0)

    signal.signal(signal.SIGTERM, _stop)
    srv.start()
    if args.kubeconfig:
        srv.write_kubeconfig(args.kubeconfig, token=args.token)
        print(f"kubeconfig: {args.kubeconfig}", file=sys.stderr)
    count = sum(len(srv.objects(t.plural, t.group, t.version)) for t in srv.types)
    print(f"fakeapi: serving {count} objects of {len(srv.types)} types at {srv.url}", file=sys.stderr)
    print(f"READY {srv.url}", flush=True)
    with contextlib.suppress(KeyboardInterrupt):
        srv.serve_forever()
    return 0


if __name__ == "__main__":
    sys.exit(main())
