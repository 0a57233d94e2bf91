"""`llmgw`: validate and render offline, generate CRDs and schemas, run the operator.

Exit codes: 0 clean, 1 findings, 2 input that cannot be read or a usage error.
Bad input is answered with sentences that name the file, the object and the
field; never with a traceback.
"""

from __future__ import annotations

import argparse
import functools
import gc
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TextIO

from llmgw import __version__, manifests, options
from llmgw.core import pipeline, resolve, revisions
from llmgw.core.findings import Finding

EXIT_OK = 0
EXIT_FINDINGS = 1
EXIT_UNREADABLE = 2


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    if not hasattr(args, "func"):
        parser.print_help(sys.stderr)
        return EXIT_UNREADABLE
    try:
        return int(args.func(args))
    except manifests.LoadError as exc:
        print(f"llmgw: {exc}", file=sys.stderr)
        return EXIT_UNREADABLE
    except BrokenPipeError:  # pragma: no cover - `llmgw render | head`
        return EXIT_OK


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="llmgw",
        description="llmgw: LLM gateways on Kubernetes, validated and rendered from custom resources.",
    )
    p.add_argument("--version", action="version", version=f"llmgw {__version__}")
    sub = p.add_subparsers(metavar="COMMAND")

    v = sub.add_parser(
        "validate",
        help="check LLMProvider, FallbackChain and LLMGateway manifests",
        description="Check manifests as the operator would. Exit 0 clean, 1 findings, 2 unreadable.",
    )
    v.add_argument("paths", nargs="+", metavar="PATH", help="files or folders of YAML")
    v.add_argument(
        "--output",
        "-o",
        choices=("text", "json", "github"),
        default="text",
        help="text for people, json for tools, github for workflow annotations",
    )
    v.add_argument("--strict", action="store_true", help="exit 1 on warnings too")
    v.set_defaults(func=_validate)

    r = sub.add_parser(
        "render",
        help="print the LiteLLM config the operator would store",
        description="Print a gateway's LiteLLM config, byte-identical to the operator's ConfigMap.",
    )
    r.add_argument("paths", nargs="+", metavar="PATH", help="files or folders of YAML")
    r.add_argument(
        "--gateway",
        "-g",
        metavar="NAMESPACE/NAME",
        help="the gateway to render (needed when the input holds several)",
    )
    r.set_defaults(func=_render)

    c = sub.add_parser("crds", help="write the CRDs generated from the API models")
    c.add_argument("--output-dir", default="crds", type=Path)
    c.add_argument("--check", action="store_true", help="exit 1 if the files differ")
    c.set_defaults(func=_crds)

    s = sub.add_parser("schema", help="write JSON Schemas of the three kinds, for editors")
    s.add_argument("--output-dir", default="schemas", type=Path)
    s.add_argument("--check", action="store_true", help="exit 1 if the files differ")
    s.set_defaults(func=_schema)

    run = sub.add_parser("run", help="run the operator against a cluster")
    run.add_argument(
        "--namespace",
        "-n",
        action="append",
        default=[],
        metavar="NS",
        help="watch only this namespace (repeatable); all namespaces by default",
    )
    run.add_argument("--metrics-port", type=int, default=8080, help="Prometheus metrics (default 8080)")
    run.add_argument("--health-port", type=int, default=8081, help="liveness: GET /healthz (default 8081)")
    run.add_argument(
        "--settle-seconds",
        type=float,
        default=options.SETTLE_SECONDS,
        metavar="N",
        help=(
            f"render once changes have been quiet for N s (default {options.SETTLE_SECONDS:g}), "
            f"and at most max(N, {options.MAX_SETTLE_SECONDS:g}) s after the first change"
        ),
    )
    run.add_argument(
        "--log-format", choices=("text", "json"), default="text", help="json: one JSON object per line"
    )
    run.add_argument(
        "--leader-election",
        action="store_true",
        help="act only while holding a coordination Lease (run several replicas; one acts)",
    )
    run.add_argument(
        "--leader-election-namespace",
        default=os.environ.get("POD_NAMESPACE", options.LEASE_NAMESPACE),
        help="namespace of the Lease (default: $POD_NAMESPACE, else default)",
    )
    run.add_argument(
        "--leader-election-name",
        default=options.LEASE_NAME,
        help=f"name of the Lease (default {options.LEASE_NAME})",
    )
    run.add_argument("--identity", default=None, help="this replica's name in the Lease (default: pod name)")
    run.add_argument(
        "--watch-secret-versions",
        action="store_true",
        help=(
            "list and watch Secrets' metadata only (never their data) so rolloutOnSecretChange "
            "works (needs list/watch on Secrets)"
        ),
    )
    run.add_argument(
        "--probe-interval-seconds",
        type=float,
        default=None,
        help="probe every provider's model list this often, whatever its discovery.intervalSeconds",
    )
    run.add_argument(
        "--webhook",
        action="store_true",
        help="serve the validating admission webhook and manage validating.llmgateway.dev",
    )
    run.add_argument(
        "--webhook-port", type=int, default=options.WEBHOOK_PORT, help="port of the webhook (HTTPS)"
    )
    run.add_argument(
        "--webhook-host",
        default=None,
        metavar="NAME",
        help="name the API server reaches the webhook by, e.g. llmgw-webhook.llmgw-system.svc",
    )
    run.add_argument(
        "--webhook-cert-dir",
        default=None,
        metavar="DIR",
        help="tls.crt, tls.key and ca.crt (a cert-manager Secret mounted); self-signed if left out",
    )
    run.add_argument(
        "--webhook-failure-policy",
        choices=("Ignore", "Fail"),
        default=options.WEBHOOK_FAILURE_POLICY,
        help="what the API server does when the webhook cannot answer (Ignore: admit)",
    )
    run.add_argument(
        "--status-concurrency",
        type=_positive_int,
        default=options.STATUS_CONCURRENCY,
        metavar="N",
        help=f"status writes in flight at once (default {options.STATUS_CONCURRENCY}); gateways' last",
    )
    run.add_argument(
        "--api-qps",
        type=_qps,
        default=None,
        metavar="QPS",
        help=(
            f"calls a second to the API server on average (0: no limit; default {options.API_QPS_AUTO}: "
            f"none when the server applies API Priority and Fairness, else {options.API_QPS:g})"
        ),
    )
    run.add_argument(
        "--api-burst",
        type=_positive_int,
        default=options.API_BURST,
        metavar="N",
        help=f"calls at once before --api-qps applies (default {options.API_BURST})",
    )
    run.add_argument("--verbose", "-v", action="store_true", help="debug logging")
    run.set_defaults(func=_run)

    d = sub.add_parser(
        "demo",
        help="run the operator's main job on this machine: embedded API, real LiteLLM pods",
        description=(
            "Start an embedded Kubernetes API, the operator, real LiteLLM gateway pods and fake "
            "backends on loopback, apply DIR, and show what `kubectl get llm` would. "
            "`llmgw demo get | fail NAME | recover NAME` talk to a running demo."
        ),
    )
    from llmgw.demo import options as demo_options

    demo_options.add_arguments(d)
    d.set_defaults(func=_demo)
    return p


def _qps(text: str) -> float | None:
    """A rate (>= 0), or `auto` (None)."""
    if text.strip().lower() == options.API_QPS_AUTO:
        return None
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not value >= 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"{text!r} is not {options.API_QPS_AUTO} or a rate of 0 or more")
    return value


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be 1 or more, not {value}")
    return value


def _without_gc(command: Callable[[argparse.Namespace], int]) -> Callable[[argparse.Namespace], int]:
    """Run a one-shot command with the cyclic garbage collector paused.

    Everything `validate` and `render` read stays alive until they return, so each
    full collection walks every parsed object for nothing (a third of `llmgw render`'s
    time at 10,000 models; tests/perf/bench_render.py). Reference counting still frees
    what dies, peak memory is the same, and the collector's state is restored after.
    """

    @functools.wraps(command)
    def run(args: argparse.Namespace) -> int:
        enabled = gc.isenabled()
        gc.disable()
        try:
            return command(args)
        finally:
            if enabled:
                gc.enable()

    return run


@_without_gc
def _validate(args: argparse.Namespace) -> int:
    loaded = manifests.load(args.paths)
    estate = loaded.estate()
    outcomes, found = pipeline.check(estate)
    errors = [f for f in found if f.severity == "error"]
    warnings = [f for f in found if f.severity == "warning"]
    out: TextIO = sys.stdout
    if not loaded.raws:
        print(
            f"{', '.join(args.paths)}: no LLMProvider, FallbackChain or LLMGateway objects "
            f"(apiVersion llmgateway.dev/v1alpha1) in {loaded.files} file(s)",
            file=out,
        )
        return EXIT_FINDINGS
    if args.output == "json":
        out.write(manifests.dump_json(_report(loaded, outcomes, found)) + "\n")
    else:
        for f in found:
            out.write(_line(loaded, f, github=args.output == "github") + "\n")
        if args.output == "text":
            for o in outcomes:
                _summary(out, o)
            verdict = "ok" if not errors else "invalid"
            out.write(f"{verdict}: {len(errors)} error(s), {len(warnings)} warning(s)\n")
    if errors or (args.strict and warnings):
        return EXIT_FINDINGS
    return EXIT_OK


@_without_gc
def _render(args: argparse.Namespace) -> int:
    loaded = manifests.load(args.paths)
    estate = loaded.estate()
    gateways = pipeline.gateways(estate)
    if args.gateway:
        chosen = [g for g in gateways if _key(g.metadata) == args.gateway]
        if not chosen:
            known = ", ".join(_key(g.metadata) for g in gateways) or "none"
            print(
                f"llmgw: no valid LLMGateway {args.gateway} in the input (gateways: {known})",
                file=sys.stderr,
            )
            return EXIT_UNREADABLE
    elif not gateways:
        print(
            "llmgw: no valid LLMGateway in the input; `llmgw validate` says what to fix",
            file=sys.stderr,
        )
        return EXIT_FINDINGS
    elif len(gateways) != 1:
        known = ", ".join(_key(g.metadata) for g in gateways) or "none valid"
        print(
            f"llmgw: the input holds {len(gateways)} gateways ({known}); "
            "choose one with --gateway NAMESPACE/NAME",
            file=sys.stderr,
        )
        return EXIT_UNREADABLE
    else:
        chosen = list(gateways)
    outcome = pipeline.run(estate, chosen[0])
    sys.stdout.write(outcome.rendered.text)
    excluded = outcome.resolution.excluded
    for f in outcome.resolution.findings:
        # Whole objects left out say so; a dropped link or a warning is said as it is.
        left = "left out: " if (f.kind, f.namespace, f.name) in excluded else ""
        print(f"llmgw: {left}{_line(loaded, f)}", file=sys.stderr)
    return EXIT_OK


def _crds(args: argparse.Namespace) -> int:
    from llmgw import crdfiles

    return _generated(args, "llmgw crds", crdfiles.check_crds, crdfiles.write_crds)


def _schema(args: argparse.Namespace) -> int:
    from llmgw import crdfiles

    return _generated(args, "llmgw schema", crdfiles.check_schemas, crdfiles.write_schemas)


def _generated(
    args: argparse.Namespace,
    command: str,
    check: Callable[[Path], list[Path]],
    write: Callable[[Path], list[Path]],
) -> int:
    """Write generated files into --output-dir, or with --check, name those that differ."""
    if args.check:
        stale = check(args.output_dir)
        for path in stale:
            print(f"{path}: differs from the models; run `{command}`", file=sys.stderr)
        return EXIT_FINDINGS if stale else EXIT_OK
    for path in write(args.output_dir):
        print(path)
    return EXIT_OK


def _run(args: argparse.Namespace) -> int:  # pragma: no cover - exercised by integration tests
    from llmgw import runner

    return int(runner.run(args))


def _demo(args: argparse.Namespace) -> int:  # pragma: no cover - exercised by tests/demo
    from llmgw.demo import commands

    return commands.main(args)


def _key(meta: Any) -> str:
    return f"{meta.namespace}/{meta.name}"


def _where(loaded: manifests.Loaded, f: Finding) -> tuple[str, int] | None:
    source = loaded.sources.get((f.kind, f.namespace, f.name))
    if source is None:
        return None
    return str(source.path), manifests.field_line(source, f.field)


def _line(loaded: manifests.Loaded, f: Finding, *, github: bool = False) -> str:
    where = _where(loaded, f)
    if github:
        loc = f" file={_github_property(where[0])},line={where[1]}" if where else ""
        return f"::{f.severity}{loc}::{_github_data(str(f))}"
    prefix = f"{where[0]}:{where[1]}: " if where else ""
    return f"{prefix}{f.severity}: {f}"


def _github_data(text: str) -> str:
    """The message of a GitHub workflow command, escaped so that it stays on its line."""
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def _github_property(text: str) -> str:
    """A property value of a workflow command (file=...), escaped: `:` and `,` end one."""
    return _github_data(text).replace(":", "%3A").replace(",", "%2C")


def _summary(out: TextIO, o: pipeline.Outcome) -> None:
    res = o.resolution
    gw = res.gateway.metadata
    revision, config_map = revisions.short(o.rendered.hash), revisions.name(gw.name, o.rendered.hash)
    out.write(
        f"gateway {gw.namespace}/{gw.name}: {len(res.providers)} provider(s), "
        f"{len(res.models)} model(s), {len(res.chains)} chain(s); "
        f"revision {revision} (ConfigMap {config_map})\n"
    )
    for a in res.chains:
        meta = a.chain.metadata
        order = " -> ".join(_attempt_text(res, m) for m in res.order[(meta.namespace, meta.name)])
        out.write(f"  FallbackChain {meta.namespace}/{meta.name} ({a.chain.spec.trigger}): {order}\n")


def _attempt_text(res: resolve.Resolution, model: str) -> str:
    """`llama-3.1-8b (131072)`: an attempt with its context window, where one is declared."""
    info = res.info.get(model)
    window = info.context_window if info is not None else None
    return model if window is None else f"{model} ({window})"


def _report(
    loaded: manifests.Loaded, outcomes: list[pipeline.Outcome], found: Sequence[Finding]
) -> dict[str, Any]:
    rows = []
    for f in found:
        where = _where(loaded, f)
        rows.append(
            {
                "severity": f.severity,
                "kind": f.kind,
                "namespace": f.namespace,
                "name": f.name,
                "field": f.field,
                "reason": f.reason,
                "message": f.message,
                "text": str(f),
                "file": where[0] if where else None,
                "line": where[1] if where else None,
            }
        )
    gateways = []
    for o in outcomes:
        res = o.resolution
        gateways.append(
            {
                "namespace": res.gateway.metadata.namespace,
                "name": res.gateway.metadata.name,
                "revision": o.rendered.hash,
                "configMap": revisions.name(res.gateway.metadata.name, o.rendered.hash),
                "providers": len(res.providers),
                "models": sorted(res.models),
                "chains": [
                    {
                        "namespace": a.chain.metadata.namespace,
                        "name": a.chain.metadata.name,
                        "trigger": a.chain.spec.trigger,
                        "effectiveOrder": list(
                            res.order[(a.chain.metadata.namespace, a.chain.metadata.name)]
                        ),
                        "attempts": resolve.attempts(
                            res, res.order[(a.chain.metadata.namespace, a.chain.metadata.name)]
                        ),
                    }
                    for a in res.chains
                ],
            }
        )
    return {
        "errors": sum(f.severity == "error" for f in found),
        "warnings": sum(f.severity == "warning" for f in found),
        "findings": rows,
        "gateways": gateways,
    }


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
