"""Command line: wires collect -> analyse -> write; holds no logic of its own.

Every flag has an environment twin, MTLS_READINESS_<FLAG> (e.g. --prometheus-url is
MTLS_READINESS_PROMETHEUS_URL), so the CronJob is configured from a ConfigMap.
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import json
import logging
import os
import sys
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, NoReturn

from analyzer import __version__
from analyzer.config import PrometheusSettings, PushgatewaySettings, ReportConfig, parse_duration
from analyzer.errors import UserError

ENV_PREFIX = "MTLS_READINESS_"
EXIT_OK, EXIT_FAILED, EXIT_INCOMPLETE, EXIT_WOULD_BREAK = 0, 1, 2, 3
log = logging.getLogger("mtls_readiness")


def env_name(flag: str) -> str:
    return ENV_PREFIX + flag.lstrip("-").replace("-", "_").upper()


def _env_default(names: tuple[str, ...], kwargs: dict) -> dict:
    """Take a flag's default from its environment twin; the command line still wins."""
    long = next((n for n in names if n.startswith("--")), None)
    if long is None or long in ("--help", "--version"):
        return kwargs
    value = os.environ.get(env_name(long))
    if value is None:
        return kwargs
    action = kwargs.get("action")
    if action == "store_true":
        default: object = value.strip().lower() in ("1", "true", "yes", "on")
    elif action == "append":
        default = [line.strip() for line in value.splitlines() if line.strip()]
    else:
        default = value  # argparse applies `type` to string defaults
    return {**kwargs, "default": default, "required": False}


def _lookback(text: str) -> str:
    try:
        parse_duration(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    return text


def _count(text: str) -> int:
    if not text.strip().isdigit():
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number >= 0")
    return int(text)


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not value >= 0:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds >= 0")
    return value


def _add_output(p: argparse.ArgumentParser) -> None:
    p.add_argument("--output-dir", type=Path, default=Path("reports"), help="where runs are written (default: reports)")
    p.add_argument(
        "--keep-runs", type=_count, default=60, metavar="N", help="keep the newest N runs, 0: all (default: 60)"
    )
    p.add_argument(
        "--keep-days", type=_count, default=0, metavar="D", help="also remove runs older than D days (default: 0, off)"
    )
    p.add_argument(
        "--lock-timeout",
        type=_seconds,
        default=300.0,
        metavar="SECONDS",
        help="wait this long for another run publishing into --output-dir, then fail (default: 300)",
    )


def _add_print(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "-o",
        "--output-format",  # not --output: its twin would be snapshot --output's MTLS_READINESS_OUTPUT
        choices=["text", "json", "table"],
        default="text",
        help="also print the result to stdout: json (result.json) or table (namespaces); default: a short receipt",
    )


def _add_pushgateway(p: argparse.ArgumentParser) -> None:
    p.add_argument("--pushgateway-url", help="push the run's mtls_readiness_* gauges to this Pushgateway")
    p.add_argument("--pushgateway-job", default="mtls-readiness", help="job grouping key (default: mtls-readiness)")
    p.add_argument("--pushgateway-bearer-token-file", type=Path, help="file holding a bearer token for the Pushgateway")
    p.add_argument("--pushgateway-username-file", type=Path, help="file holding the basic-auth user name")
    p.add_argument("--pushgateway-password-file", type=Path, help="file holding the basic-auth password")
    p.add_argument("--pushgateway-ca-file", type=Path, help="CA bundle to verify the Pushgateway TLS certificate")


def _add_window(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--lookback", type=_lookback, default="7d", help="evidence window, Prometheus duration syntax (default: 7d)"
    )
    p.add_argument("--root-namespace", default="istio-system", help="meshConfig.rootNamespace (default: istio-system)")


def _add_scope(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--namespace",
        action="append",
        default=[],
        metavar="GLOB",
        help="report only destination namespaces matching GLOB (shell glob: team-*); repeatable or "
        "comma-separated (env: one per line)",
    )
    p.add_argument(
        "--exclude-namespace",
        action="append",
        default=[],
        metavar="GLOB",
        help="leave out destination namespaces matching GLOB; repeatable or comma-separated (env: one per line)",
    )


def _peer_label(value: str) -> str:
    from analyzer.collect.client_queries import valid_label

    if value and not valid_label(value):
        raise argparse.ArgumentTypeError(f"{value!r} is not a Prometheus label name ([a-zA-Z_][a-zA-Z0-9_]*)")
    return value


def _add_sources(p: argparse.ArgumentParser, *, prometheus_required: bool) -> None:
    p.add_argument(
        "--prometheus-url",
        required=prometheus_required,
        help="Prometheus-compatible query API (Prometheus, Thanos Querier, Mimir, VictoriaMetrics)",
    )
    p.add_argument(
        "--peer-address-label",
        type=_peer_label,
        default="source_address",
        help="label a Telemetry override adds with the peer address, to name unknown clients ('' for none; "
        "default: source_address; see docs/attribution.md)",
    )
    p.add_argument(
        "--prometheus-bearer-token-file", type=Path, help="file holding a bearer token (read each run, never logged)"
    )
    p.add_argument("--prometheus-ca-file", type=Path, help="CA bundle to verify the Prometheus TLS certificate")
    p.add_argument(
        "--prometheus-header",
        action="append",
        default=[],
        metavar="'NAME: VALUE'",
        help="extra HTTP header; repeatable (env: one per line)",
    )
    p.add_argument(
        "--prometheus-header-file",
        action="append",
        default=[],
        metavar="'NAME: FILE'|DIR",
        help="extra HTTP header whose value is read from FILE, or a folder with one file per header; repeatable",
    )
    p.add_argument("--prometheus-cert-file", type=Path, help="client certificate (PEM) for Prometheus behind mTLS")
    p.add_argument("--prometheus-key-file", type=Path, help="private key of --prometheus-cert-file (PEM)")
    p.add_argument("--prometheus-username-file", type=Path, help="file holding the basic-auth user name")
    p.add_argument("--prometheus-password-file", type=Path, help="file holding the basic-auth password")
    p.add_argument(
        "--prometheus-sigv4-region",
        metavar="REGION",
        help="sign requests with AWS SigV4 (Amazon Managed Prometheus); credentials from the AWS env vars or files",
    )
    p.add_argument("--prometheus-tenant", help="tenant for Mimir/Cortex (sent as X-Scope-OrgID)")
    p.add_argument(
        "--prometheus-selector",
        action="append",
        default=[],
        metavar="MATCHER",
        help="label matcher(s) added to every query, e.g. 'cluster=\"prod\"' for a Thanos or Mimir holding "
        "many clusters; repeatable or comma-separated (env: one per line)",
    )
    p.add_argument(
        "--prometheus-insecure-skip-verify", action="store_true", help="do not verify TLS (test clusters only)"
    )
    p.add_argument("--prometheus-timeout", type=float, default=120.0, help="seconds per query (default: 120)")
    p.add_argument(
        "--policies-from", default="kube", help="'kube' (kubeconfig or in-cluster), or a YAML file or folder"
    )
    p.add_argument(
        "--cluster", default="", help="Istio CLUSTER_ID of the cluster whose policies are read (default: any)"
    )
    _add_kube(p)


def _add_kube(p: argparse.ArgumentParser) -> None:
    p.add_argument("--context", dest="kube_context", help="kubeconfig context (default: current)")
    p.add_argument("--kubeconfig", help="kubeconfig file (default: $KUBECONFIG, ~/.kube/config, then in-cluster)")
    p.add_argument("--kube-timeout", type=float, default=30.0, help="seconds per Kubernetes API call (default: 30)")


class _Parser(argparse.ArgumentParser):
    """Every flag gets its environment twin, named in its help with its default. A usage error
    is bad input: exit 1 with one line, not argparse's exit 2, which would tell a CronJob's
    script that a report was written, and not a usage block. Subparsers use this same class."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("formatter_class", argparse.RawDescriptionHelpFormatter)
        super().__init__(*args, **kwargs)

    def add_argument(self, *names: str, **kwargs: Any) -> argparse.Action:
        return super().add_argument(*names, **_env_default(names, _with_twin(names, kwargs)))

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_FAILED, f"{self.prog}: error: {message}; see {self.prog} --help\n")


def _with_twin(names: tuple[str, ...], kwargs: dict) -> dict:
    """The help line of a flag names its environment twin and its default."""
    long = next((n for n in names if n.startswith("--")), None)
    help_text = kwargs.get("help")
    if long is None or long in ("--help", "--version") or help_text in (None, argparse.SUPPRESS):
        return kwargs
    twin = f"env {env_name(long)}"
    if help_text.endswith(")") and "(default: " in help_text:
        return {**kwargs, "help": f"{help_text[:-1]}; {twin})"}
    default = kwargs.get("default")
    if default not in (None, [], False, argparse.SUPPRESS):
        twin = f"default: {default}; {twin}"
    return {**kwargs, "help": f"{help_text} ({twin})"}


EXIT_CODES = """exit codes:
  0  complete report published
  1  nothing published (bad input, Prometheus or cluster unreachable, output not writable)
  2  report published but incomplete: some verdicts UNKNOWN, or part of the data missing"""

HELP = {
    "report": (
        "The nightly job: query Prometheus, read policies from the cluster (or files), publish a report run.",
        """examples:
  mtls-readiness report --prometheus-url http://prometheus.istio-system:9090
  mtls-readiness report --prometheus-url http://127.0.0.1:9090 --policies-from prod-mesh.yaml --lookback 36h

"""
        + EXIT_CODES,
    ),
    "demo": (
        "The same pipeline on a built-in sample mesh: no cluster, no Prometheus. Its sample shows every\n"
        "verdict on purpose, UNKNOWN included, so it exits 0 once the report is published.",
        """examples:
  mtls-readiness demo
  mtls-readiness demo --mesh walkthrough --output-dir /tmp/reports

exit codes:
  0  report published
  1  nothing published (output not writable)""",
    ),
    "what-if": (
        "Predict which clients observed in the window the proposed PeerAuthentication(s) would cut off,\n"
        "or which the proposed AuthorizationPolicies would deny (one kind per file).\n"
        "Gate a pull request with it: only exit 0 is a pass.",
        """examples:
  mtls-readiness what-if --apply strict-foo.yaml --prometheus-url http://127.0.0.1:9090
  mtls-readiness what-if --apply strict-foo.yaml --demo

exit codes:
  0  the window's evidence shows no observed client would be cut off
  1  bad input (an unreadable document in --apply, a bad flag)
  2  cannot tell (failed or partial queries, no data, unreadable labels, fields the metrics lack)
  3  the proposal would cut off (or deny) a client observed in the window""",
    ),
    "snapshot": (
        "Save the Kubernetes objects a report reads (trimmed to the fields it uses) as YAML,\n"
        "to rerun a report with --policies-from FILE or attach to a bug report.",
        """examples:
  mtls-readiness snapshot --context prod --output prod-mesh.yaml
  mtls-readiness snapshot --output - > mesh.yaml

exit codes:
  0  snapshot written
  1  cluster unreachable, a permission missing, or FILE not writable""",
    ),
}


def _add_global(p: argparse.ArgumentParser, *, top: bool) -> None:
    """Global flags, accepted before and after the subcommand. Below the top level they default
    to SUPPRESS, so an unset flag there does not overwrite what was given before the subcommand."""
    p.add_argument(
        "--log-level",
        type=str.upper,
        choices=["DEBUG", "INFO", "WARNING", "ERROR"],
        help="stderr log level (default: INFO)",
        default="INFO" if top else argparse.SUPPRESS,
    )
    p.add_argument(
        "--log-format",
        choices=["text", "json"],
        help="stderr logs as text or JSON lines (default: text)",
        default="text" if top else argparse.SUPPRESS,
    )


def _subparser(sub: argparse._SubParsersAction, name: str) -> argparse.ArgumentParser:
    summary, epilog = HELP[name]
    parser = sub.add_parser(name, help=summary.split("\n")[0].rstrip("."), description=summary, epilog=epilog)
    _add_global(parser, top=False)
    return parser


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="mtls-readiness",
        description="Find the clients that still send plaintext to your Istio workloads, and what is safe "
        "to switch to STRICT mTLS.",
        epilog="Every flag has an environment twin: --prometheus-url is MTLS_READINESS_PROMETHEUS_URL.\n"
        "Run 'mtls-readiness COMMAND --help' for a command's flags, examples and exit codes.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    _add_global(parser, top=True)
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    rep = _subparser(sub, "report")
    _add_sources(rep, prometheus_required=True)
    _add_window(rep)
    _add_scope(rep)
    _add_output(rep)
    _add_print(rep)
    _add_pushgateway(rep)

    demo = _subparser(sub, "demo")
    demo.add_argument(
        "--mesh", default="demo", choices=["demo", "walkthrough"], help="which sample mesh (default: demo)"
    )
    _add_window(demo)
    _add_scope(demo)
    _add_output(demo)
    _add_print(demo)
    _add_pushgateway(demo)

    whatif = _subparser(sub, "what-if")
    whatif.add_argument(
        "--apply",
        required=True,
        type=Path,
        metavar="FILE",
        help="YAML with the proposed PeerAuthentication(s), or AuthorizationPolicies (not both)",
    )
    whatif.add_argument(
        "--demo", action="store_true", help="use the built-in sample mesh instead of Prometheus and a cluster"
    )
    whatif.add_argument(
        "-o",
        "--output-format",
        choices=["table", "json"],
        default="table",
        help="table (for people, default) or json (for a pipeline: verdict, exit_code, cut_off, doubts, warnings)",
    )
    _add_sources(whatif, prometheus_required=False)
    _add_window(whatif)
    _add_scope(whatif)

    snap = _subparser(sub, "snapshot")
    snap.add_argument("--output", required=True, metavar="FILE", help="YAML file to write ('-': stdout)")
    _add_kube(snap)

    return parser


def _split(values: Sequence[str] | None) -> list[str]:
    """Repeatable flags that also take comma-separated lists (globs never hold a comma)."""
    return [part.strip() for value in values or () for part in value.split(",") if part.strip()]


def _globs(flag: str, values: Sequence[str] | None) -> tuple[str, ...]:
    from analyzer.collect.matchers import check_glob

    try:
        return tuple(dict.fromkeys(check_glob(g) for g in _split(values)))
    except ValueError as exc:
        raise UserError(f"{flag}: {exc}") from None


def _selector(values: Sequence[str] | None) -> tuple[str, ...]:
    from analyzer.collect.matchers import parse_selector

    try:
        return tuple(parse_selector(values or ()))
    except ValueError as exc:
        raise UserError(f"--prometheus-selector: {exc}") from None


def _config(args: argparse.Namespace) -> ReportConfig:
    prometheus = None
    if getattr(args, "prometheus_url", None):
        prometheus = PrometheusSettings(
            url=args.prometheus_url,
            bearer_token_file=args.prometheus_bearer_token_file,
            ca_file=args.prometheus_ca_file,
            headers=tuple(args.prometheus_header or ()),
            header_files=tuple(args.prometheus_header_file or ()),
            cert_file=args.prometheus_cert_file,
            key_file=args.prometheus_key_file,
            username_file=args.prometheus_username_file,
            password_file=args.prometheus_password_file,
            sigv4_region=args.prometheus_sigv4_region,
            tenant=args.prometheus_tenant,
            insecure_skip_verify=bool(args.prometheus_insecure_skip_verify),
            timeout=float(args.prometheus_timeout),
            selector=_selector(getattr(args, "prometheus_selector", None)),
            peer_address_label=getattr(args, "peer_address_label", "source_address"),
        )
    pushgateway = None
    if getattr(args, "pushgateway_url", None):
        pushgateway = PushgatewaySettings(
            url=args.pushgateway_url,
            job=args.pushgateway_job,
            bearer_token_file=args.pushgateway_bearer_token_file,
            username_file=args.pushgateway_username_file,
            password_file=args.pushgateway_password_file,
            ca_file=args.pushgateway_ca_file,
        )
    return ReportConfig(
        lookback=args.lookback,
        policies_from=getattr(args, "policies_from", "kube"),
        root_namespace=args.root_namespace,
        output_dir=Path(getattr(args, "output_dir", "reports")),
        cluster=getattr(args, "cluster", ""),
        kube_context=getattr(args, "kube_context", None),
        kubeconfig=getattr(args, "kubeconfig", None),
        kube_timeout=float(getattr(args, "kube_timeout", 30.0)),
        prometheus=prometheus,
        keep_runs=getattr(args, "keep_runs", 60),
        keep_days=getattr(args, "keep_days", 0),
        lock_timeout=getattr(args, "lock_timeout", 300.0),
        pushgateway=pushgateway,
        namespaces=_globs("--namespace", getattr(args, "namespace", None)),
        exclude_namespaces=_globs("--exclude-namespace", getattr(args, "exclude_namespace", None)),
    )


def _report(args: argparse.Namespace, sample: str | None = None) -> int:
    from analyzer import pipeline

    result, folder = pipeline.report(_config(args), sample=sample)
    output = getattr(args, "output_format", "text")
    # With -o json/table stdout is for the script that reads it; the receipt goes to stderr.
    receipt = sys.stdout if output == "text" else sys.stderr
    if output != "text":
        from analyzer.write.console import render

        sys.stdout.write(render(result, output))
    counts = ", ".join(f"{n} {v}" for v, n in result.verdict_counts().items() if n)
    print(f"mesh verdict {result.mesh.verdict.value}; workloads: {counts}", file=receipt)
    print(f"report: {folder / 'index.html'}", file=receipt)
    for warning in result.warnings:
        log.warning("%s", warning)
    return EXIT_OK if result.complete else EXIT_INCOMPLETE


def _what_if(args: argparse.Namespace) -> int:
    from analyzer import pipeline
    from analyzer.analyse import authz_whatif
    from analyzer.analyse.whatif import format_table

    prediction = pipeline.what_if(_config(args), args.apply, sample="demo" if args.demo else None)
    if args.output_format == "json":
        import json

        print(json.dumps(prediction.to_dict(), indent=2))
    elif prediction.kind == "AuthorizationPolicy":
        print(authz_whatif.format_table(prediction))
    else:
        print(format_table(prediction))
    # 0 only on evidence that nobody observed is cut off; 3 (a cut-off) wins over 2 (cannot tell).
    return prediction.exit_code


def _snapshot(args: argparse.Namespace) -> int:
    from analyzer.collect.kube import read_objects, write_snapshot

    read = read_objects(context=args.kube_context, kubeconfig=args.kubeconfig, timeout=float(args.kube_timeout))
    write_snapshot(read, args.output)
    for warning in read.warnings:
        log.warning("%s", warning)
    # stdout may be the snapshot itself: the receipt goes to stderr then.
    receipt = sys.stderr if args.output == "-" else sys.stdout
    print(f"snapshot: {len(read.objects)} objects written to {args.output}", file=receipt)
    return EXIT_OK


class _JsonLines(logging.Formatter):
    """One JSON object per line (time, level, message, logger), for log collectors."""

    def format(self, record: logging.LogRecord) -> str:
        line = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "message": record.getMessage(),
            "logger": record.name,
        }
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return json.dumps(line, ensure_ascii=False)


def _configure_logging(level: str, fmt: str) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(_JsonLines() if fmt == "json" else logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
    logging.basicConfig(level=level, handlers=[handler])


# Young collections every this many new container objects, in place of CPython's 700 (see below).
BATCH_GC_THRESHOLD = 10_000


@contextlib.contextmanager
def batch_collection() -> Iterator[None]:
    """Garbage collection paced for one batch run, restored afterwards.

    A run builds millions of small containers (parsed answers, rows, results) and frees few
    until it ends, so at CPython's default pace the collector rescans them again and again:
    about a third of the analysis time at 80,000 edges. Collecting every 10,000 new objects
    keeps reference cycles collected at a few percent of that; what is loaded before the run
    (modules, the interpreter's own objects) is frozen out of every scan."""
    previous = gc.get_threshold()
    gc.freeze()
    gc.set_threshold(BATCH_GC_THRESHOLD, *previous[1:])
    try:
        yield
    finally:
        gc.set_threshold(*previous)
        gc.unfreeze()


def main(argv: Sequence[str] | None = None) -> int:
    # The job draws charts to SVG only; no display backend (notebooks keep their own).
    os.environ.setdefault("MPLBACKEND", "Agg")
    parser = build_parser()
    args = parser.parse_args(argv)
    _configure_logging(args.log_level, args.log_format)
    if args.log_level != "DEBUG":
        # urllib3 logs every retry as a warning; a failure ends in one line that says what to do.
        logging.getLogger("urllib3").setLevel(logging.ERROR)
    try:
        with batch_collection():  # one run per process: the CLI paces the collector for it
            return _dispatch(parser, args)
    except UserError as exc:
        print(f"mtls-readiness: error: {exc}", file=sys.stderr)
        return EXIT_FAILED
    except KeyboardInterrupt:
        return 130


def _dispatch(parser: argparse.ArgumentParser, args: argparse.Namespace) -> int:
    if args.command == "report":
        return _report(args)
    if args.command == "demo":
        # Published is success: the sample shows UNKNOWN on purpose (traffic whose
        # connection_security_policy label was dropped), and a Quick start must not read as failed.
        if _report(args, sample=args.mesh) == EXIT_INCOMPLETE:
            log.info("demo: the sample mesh has UNKNOWN verdicts on purpose; see the report's warnings")
        return EXIT_OK
    if args.command == "what-if":
        return _what_if(args)
    if args.command == "snapshot":
        return _snapshot(args)
    parser.error(f"unknown command {args.command}")
    return EXIT_FAILED
