"""One run, stage by stage: source -> inventory -> facts -> results -> pack -> renders."""

from __future__ import annotations

import gc
import hashlib
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from evidence import __version__, attest, diff, matrix, oscal, signing
from evidence import scope as scope_mod
from evidence.collectors import collect_all
from evidence.controls import SEVERITY_ORDER, load_catalogue
from evidence.errors import EXIT_FAILURES, EXIT_INCOMPLETE, EXIT_OK
from evidence.evaluate import Results, evaluate
from evidence.inventory import Inventory
from evidence.pack import AtomicDir, PackWriter, check_destination, dumps, evidence_section, inventory_files
from evidence.probe.tls import ProbeOptions
from evidence.sources import snapshot


@dataclass
class RunOptions:
    out: Path
    snapshot: Path | None
    kubeconfig: Path | None = None
    context: str | None = None
    scope: Path | None = None
    controls: list[Path] | None = None
    as_of: datetime | None = None
    fail_on: str = "low"
    cluster_name: str | None = None
    progress: Callable[[dict[str, Any]], None] | None = None
    sign_key: Path | None = None
    sign_cert: Path | None = None
    previous: Path | None = None  # an earlier pack of the same cluster: adds changes.json ("Changes since")
    probe: ProbeOptions | None = None  # --probe-tls: the opt-in live TLS probe
    attestations: Path | None = None  # --attestations FILE: statements for what no cluster can show
    timeout: float | None = None  # live: the collection deadline in seconds (--timeout); None: the default
    request_timeout: float | None = None  # live: seconds to wait for each response (--request-timeout)
    secrets: str = "list"  # live: list | by-name | none (--secrets, --no-secrets)
    allow_insecure_http: bool = False  # live: accept an http:// API server (--allow-insecure-http)
    upload: Any = None  # storage.UploadOptions: ship the pack to object storage (--upload s3://...)
    report: str = "full"  # --report: "summary" renders only cover, summary, scope, requirements and failures


@dataclass
class RunSummary:
    pack: Path
    results: Results
    evidence_digest: str
    exit_code: int
    incomplete: bool
    cluster: str | None = None
    previous: Path | None = None  # the earlier pack compared against (--previous PACK or auto)
    pruned: list[Path] = field(default_factory=list)  # packs --keep removed after this one was written
    uploaded: str | None = None  # where the pack was uploaded and verified (--upload)
    previous_url: str | None = None  # --previous auto with --upload: the bucket's pack compared against

    def line(self) -> dict[str, Any]:
        """The run summary for scripts and alerting (`--json`): one JSON object on one line."""
        line = {"pack": str(self.pack), "exit_code": self.exit_code, "controls": self.results.control_counts,
                "findings": self.results.finding_counts, "evidence_digest": self.evidence_digest,
                "collection_complete": not self.incomplete,
                "collection_problems": self.results.collection_problems,
                "previous": self.previous_url or (str(self.previous) if self.previous else None)}
        if self.cluster is not None:
            line["cluster"] = self.cluster
        if self.pruned:
            line["pruned"] = [str(p) for p in self.pruned]
        if self.uploaded is not None:
            line["uploaded"] = self.uploaded
        return line


def collect(opts: RunOptions) -> RunSummary:
    started = datetime.now(UTC)
    check_destination(opts.out)
    signer = signing.load_signer(opts.sign_key, opts.sign_cert) if opts.sign_key else None
    previous = diff.read_pack(opts.previous, "--previous pack") if opts.previous else None
    # Object storage is checked before the cluster is read: a bucket that would be refused fails the run at once.
    storage_record = opts.upload.preflight() if opts.upload is not None else None
    catalogue = load_catalogue(opts.controls)
    scope = scope_mod.load(opts.scope)
    # Attestations are checked before the cluster is read: a YAML file (auditpack attest), or a previous pack's
    # control-matrix.xlsx whose Owner/Attestation/Comment/Evidence link columns the compliance team filled in.
    sheet = None
    if opts.attestations is not None and opts.attestations.suffix.lower() == ".xlsx":
        sheet = matrix.load(opts.attestations, catalogue, opts.previous)
        attestations = sheet.attestations
    else:
        attestations = attest.load(opts.attestations, catalogue) if opts.attestations else []
    _warm_renderer()
    inv = load_inventory(opts, opts.cluster_name or scope.cluster_name)
    if sheet is not None:
        sheet.check_cluster(inv.source.cluster.kube_system_uid)
    as_of = opts.as_of or inv.source.collected_at
    probe_record = None
    if opts.probe is not None:  # the opt-in live probe: its results become evidence objects (DESIGN.md)
        from evidence.probe import tls as tls_probe

        probe_record = tls_probe.run(inv, scope, opts.probe)
        tls_probe.record(inv, probe_record)
    _stage(opts, "deriving facts")
    facts = collect_all(inv, scope, as_of)
    gc.freeze()  # the facts live until the pack is written: later full collections need not rescan them
    _stage(opts, "evaluating", controls=len(catalogue.controls))
    results = evaluate(catalogue, facts, scope, inv.log)
    gc.freeze()
    if attestations:
        results = attest.apply(results, attestations, as_of.date())
    scope_json = {"origin": scope.origin, **scope.digest_source()}
    identity = {
        "cluster": inv.source.cluster.model_dump(mode="json"),
        "source": {"type": inv.source.type, "location": inv.source.location,
                   "collected_at": inv.source.collected_at.isoformat()},
        "as_of": as_of.isoformat(),
        "started_at": started.isoformat(),
        "catalogue": {"version": __version__, "digest": catalogue.digest, "controls": len(catalogue.controls),
                      "frameworks": {f.id: f.version for f in catalogue.frameworks}},
        # The digest of what the scope says, not of where the file was: the same scope gives the same digest.
        "scope_digest": hashlib.sha256(dumps(scope.digest_source())).hexdigest(),
    }
    if storage_record is not None:
        identity["storage"] = storage_record  # where the pack is kept, and whether that storage is immutable

    with PackWriter(opts.out) as w:
        index = inventory_files(inv, w.tmp)
        w.write_json("inventory/index.json", index)
        del index
        w.write_json("collection.json", collection_record(inv))
        w.write_json("scope.json", scope_json)
        w.write_json("facts.json", facts.model_dump(mode="json"))
        w.write_json("results.json", results.model_dump(mode="json"))
        if probe_record is not None:
            w.write_json("probes/tls.json", probe_record)
        if sheet is not None:
            w.write_json("matrix.json", sheet.record())
        if opts.attestations is not None:
            attest.copy_attachments(w.tmp, attestations)
            w.write_json("attestations.json", attest.pack_record(opts.attestations, attestations))
        if previous is not None:
            identity["previous"] = {"pack": str(opts.previous),
                                    "evidence_digest": previous["manifest"].get("evidence_digest")}
            current = {"manifest": {"evidence": identity}, "results": results.model_dump(mode="json"),
                       "facts": facts.model_dump(mode="json"), "scope": scope_json}
            w.write_json("changes.json", diff.compare(previous, current).model_dump(mode="json"))
        identity["finished_at"] = datetime.now(UTC).isoformat()
        evidence, digest = evidence_section(w.tmp, identity)
        # Who signs (algorithm, key fingerprint, certificate SHA-256): recorded in the manifest, outside the evidence
        # section and its digest; the report can print it (hook for render/pdf.py: pass signer_info along).
        signer_info = signing.signer_info(signer) if signer else None
        # The renderers read the pack's files: the inventory and facts are written, so they are dropped here and
        # the workbook is built in the memory they held (at 50,000 pods, gigabytes).
        cluster_name = inv.source.cluster.name
        del inv, facts, previous
        render_all(w.tmp, evidence, digest, signer, lambda stage, **kw: _stage(opts, stage, **kw), report=opts.report)
        _stage(opts, "signing manifest" if signer else "writing manifest")
        w.finish(identity, (lambda body: signing.sign_manifest(body, signer)) if signer else None,
                 signer_info=signer_info)
    incomplete = bool(results.collection_problems)
    summary = RunSummary(opts.out, results, digest, exit_code(results, opts.fail_on, incomplete), incomplete,
                         cluster=cluster_name, previous=opts.previous)
    if opts.upload is not None:
        summary.uploaded = opts.upload.ship(opts.out, opts.progress).url
    return summary


def load_inventory(opts: RunOptions, cluster_name: str | None) -> Inventory:
    """From --snapshot, or else from the live cluster (kubeconfig / in-cluster)."""
    if opts.snapshot is not None:
        # Parsing allocates millions of objects that live until the pack is written and form no cycles: a full
        # collection every few thousand allocations would rescan all of them (a fifth of the run at 10,000 pods).
        gc.disable()
        try:
            inv = snapshot.load(opts.snapshot, cluster_name)
        finally:
            gc.enable()
        gc.freeze()
        for note in inv.notes:  # e.g. the files skipped as not Kubernetes objects, in one line
            print(f"warning: {note}", file=sys.stderr)
        return inv
    from evidence.sources import live  # the only import of the kubernetes client

    conn = live.connect(opts.kubeconfig, opts.context, opts.allow_insecure_http)
    _stage(opts, "collecting", server=conn.server)
    scope = scope_mod.load(opts.scope)

    def in_scope(inv: Inventory) -> list[str]:
        """Namespaces tried one by one when a cluster-wide list is denied: those in scope (cde, connected)."""
        from evidence.collectors.scoping import Scopes

        scopes = Scopes(inv, scope)
        return [str(n["metadata"]["name"]) for n in inv.objects("Namespace", "")
                if scopes.of(str(n["metadata"]["name"])).in_scope]

    source = live.LiveSource(conn, live.Progress(opts.progress),
                             timeout=live.DEFAULT_RUN_TIMEOUT_S if opts.timeout is None else opts.timeout,
                             request_timeout=opts.request_timeout or live.REQUEST_TIMEOUT_S,
                             secrets=opts.secrets,  # type: ignore[arg-type]  # checked by argparse choices
                             in_scope=in_scope)
    return source.load(cluster_name)


def _stage(opts: RunOptions, stage: str, **detail: Any) -> None:
    """A progress event between the stages of a run, so a terminal shows what is happening after collection."""
    if opts.progress is not None:
        opts.progress({"event": "stage", "stage": stage, **{k: v for k, v in detail.items() if v is not None}})


def _pdf_pages(path: Path) -> int | None:
    """The page count of the rendered report (for the progress line), read with pyhanko's PDF reader."""
    from pyhanko.pdf_utils.reader import PdfFileReader

    try:
        with path.open("rb") as f:
            return int(PdfFileReader(f, strict=False).root["/Pages"]["/Count"])
    except Exception:  # only a progress detail: never fail the run over it
        return None


def take_snapshot(opts: RunOptions) -> tuple[Inventory, int]:
    """`auditpack snapshot`: the redacted inventory written atomically in the format --snapshot reads."""
    with AtomicDir(opts.out) as d:
        inv = load_inventory(opts, opts.cluster_name)
        files = snapshot.write(d.tmp, inv)
        d.commit()
    return inv, files


def collection_record(inv: Inventory) -> dict[str, Any]:
    return {
        "source": inv.source.model_dump(mode="json"),
        "log": [e.model_dump(mode="json") for e in inv.log],
        "duplicates": [d.model_dump(mode="json") for d in inv.duplicates],
        "redactions": inv.redactions,
        # Live: API groups whose discovery failed (an aggregated API answering 503), with the reason; their
        # types are in the log as not read.
        "unavailable": inv.unavailable,
        # Snapshot files that held no Kubernetes object (a README.json, a Helm values file): read, not used.
        "skipped": inv.skipped,
        # Objects left out at the inventory boundary (wrong shape, too deep), each named with the field and why;
        # their types are `error` in the log, so controls over them are inconclusive.
        "left_out": inv.left_out,
        "objects": len(inv),
    }


def exit_code(results: Results, fail_on: str, incomplete: bool) -> int:
    """3 collection incomplete, 1 failures at or above --fail-on, else 0 (README: Exit codes)."""
    if incomplete:
        return EXIT_INCOMPLETE
    if fail_on != "none":
        threshold = SEVERITY_ORDER[fail_on]
        if any(c.status == "fail" and SEVERITY_ORDER[c.severity] >= threshold for c in results.controls):
            return EXIT_FAILURES
    return EXIT_OK


def rerender(pack: Path, out: Path, sign_key: Path | None = None, sign_cert: Path | None = None,
             report: str = "full") -> Path:
    """`auditpack render`: the same evidence, presented by this version's templates, in a new directory.

    The evidence files are copied unchanged, so the evidence section and its digest stay the same; the
    manifest records which tool version rendered it. The original pack is never touched.
    """
    from evidence.pack import read_entry, require_intact

    # A stored pack is hostile input: it must verify, and every entry is copied by a checked relative path.
    manifest = require_intact(pack)
    evidence, digest = manifest["evidence"], manifest["evidence_digest"]
    signer = signing.load_signer(sign_key, sign_cert) if sign_key else None
    with PackWriter(out) as w:
        for rel in evidence["files"]:
            data = read_entry(pack, rel)  # checks the path before anything is created for it
            dst = w.tmp / rel
            dst.parent.mkdir(parents=True, exist_ok=True)
            dst.write_bytes(data)
        signer_info = signing.signer_info(signer) if signer else None
        render_all(w.tmp, evidence, digest, signer, report=report)
        identity = {k: v for k, v in evidence.items() if k != "files"}
        w.finish(identity, (lambda body: signing.sign_manifest(body, signer)) if signer else None,
                 rendered={"from": str(pack), "tool_version": __version__, "at": datetime.now(UTC).isoformat()},
                 signer_info=signer_info)
    return out


_renderers: list[Any] = []  # the two PDF processes, started by _warm_renderer before the cluster is read


def _pool() -> Any:
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    # spawn, not fork: the parent may hold threads (progress display) and a large heap that need not be copied.
    return ProcessPoolExecutor(max_workers=1, mp_context=multiprocessing.get_context("spawn"))


def _warm_renderer() -> None:
    """Start the two PDF processes and import WeasyPrint there while this one reads the cluster: the render then
    begins at once (the import is about 1.5 s of the critical path, with the second core idle meanwhile; each idle
    process holds about 85 MB). Unused ones (a run that failed before rendering) are reused by the next run or end
    with the interpreter. Two single-process pools, not one of two: each part of the PDF must have its own process,
    as the parts wait for each other's page count (render/parts.py)."""
    while len(_renderers) < 2:
        pool = _pool()
        pool.submit(_import_renderer)
        _renderers.append(pool)


def _import_renderer() -> None:
    import atexit
    import gc
    import multiprocessing

    import weasyprint  # noqa: F401

    if multiprocessing.parent_process() is not None:  # a renderer process, never the run itself
        atexit.unregister(_exit_at_once)
        atexit.register(_exit_at_once)

    from evidence.render import pdf  # noqa: F401
    # WeasyPrint allocates millions of layout objects that live until the PDF is written: the default thresholds
    # rescanned them for a fifth of the render's CPU time (92 pages: 25.5 s, 20.3 s with these).
    gc.set_threshold(50_000, 50, 1_000)


def _exit_at_once() -> None:
    """A renderer process ends without tearing its interpreter down: a spawned process finalises every module and
    object on exit, 1.5 s after a report's layout, which the run waited for. Its files are written and closed and
    its results sent (synchronously) before it is told to stop; it writes nothing to stdout or stderr after."""
    import os

    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)


def _render_pdf(*args: Any) -> None:
    """pdf.render (the report as one document) in a renderer process."""
    from evidence.render import pdf

    _import_renderer()
    pdf.render(*args)


def _render_first(*args: Any) -> Any:
    from evidence.render import parts

    _import_renderer()
    return parts.render_first(*args)


def _render_second(*args: Any) -> Any:
    from evidence.render import parts

    _import_renderer()
    return parts.render_second(*args)


def render_all(root: Path, evidence: dict[str, Any], digest: str, signer: signing.Signer | None = None,
               stage: Callable[..., None] | None = None, report: str = "full") -> None:
    """The PDF, the workbook and OSCAL from the pack's data files. The PDF (the longest: WeasyPrint's layout) is laid
    out in two processes, half the chapters each (render/parts.py), while this one writes the workbook and OSCAL and
    then joins the PDF's parts. Each file is written inside the not-yet-renamed pack, so the pack stays atomic; the
    parts are laid out in a private temporary directory that is removed afterwards."""
    import shutil
    import tempfile
    from concurrent.futures import FIRST_EXCEPTION, wait

    from evidence.render import parts, xlsx

    note = stage or (lambda *_a, **_k: None)
    note("rendering PDF, workbook and OSCAL")
    info = signing.signer_info(signer) if signer else None
    pools = [_renderers.pop() if _renderers else _pool() for _ in range(2)]
    sync = Path(tempfile.mkdtemp(prefix="auditpack-pdf-"))
    try:
        first = pools[0].submit(_render_first, root, evidence, digest, info, report, sync, root / "report.pdf")
        second = pools[1].submit(_render_second, sync)
        note("writing workbook")
        xlsx.render(root, evidence, digest, root / "control-matrix.xlsx")
        note("writing OSCAL")
        oscal.render(root, evidence, digest, root / "oscal" / "assessment-results.json")
        done, _ = wait([first, second], return_when=FIRST_EXCEPTION)
        if any(f.exception() is not None for f in done):  # (only finished ones: a waiting part would block here)
            (sync / "abort").touch()  # the other process stops waiting for its partner's page count
        errors = [e for e in (first.exception(), second.exception()) if e is not None]
        real = [e for e in errors if not isinstance(e, parts.SplitFailed)]
        if real:
            raise real[0]  # the renderer's error, re-raised here in this process
        if errors:  # the plan did not hold (the contents took two pages): the report laid out as one document
            pools[0].submit(_render_pdf, root, evidence, digest, root / "report.pdf", info, report).result()
        elif not first.result()["whole"]:
            note("joining PDF parts")
            parts.join(sync / "part-0.pdf", sync / "contents.pdf", sync / "part-1.pdf", root / "report.pdf")
    finally:
        for pool in pools:
            pool.shutdown(wait=True, cancel_futures=True)
        shutil.rmtree(sync, ignore_errors=True)
    note("rendered PDF", pages=_pdf_pages(root / "report.pdf"))
    if signer is not None:
        note("signing PDF")
        signing.sign_pdf(root / "report.pdf", signer, f"auditpack evidence pack, evidence digest {digest}")
