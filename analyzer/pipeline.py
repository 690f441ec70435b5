"""collect -> analyse -> write, wired once for the CLI, the demo and the notebooks."""

from __future__ import annotations

import contextlib
import ctypes
import gc
import logging
import time
from collections.abc import Iterable, Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Protocol

import yaml

from analyzer.analyse.changes import baseline, compare
from analyzer.analyse.readiness import Analysis, Settings, analyse
from analyzer.analyse.whatif import Prediction, predict
from analyzer.collect.manifests import build_inventory
from analyzer.collect.policy_files import SAFE_LOADER, load_inventory
from analyzer.collect.run_store import latest_run
from analyzer.config import ReportConfig
from analyzer.errors import UserError
from analyzer.model.authorization import AuthorizationPolicy
from analyzer.model.inventory import Inventory
from analyzer.model.policy import Mode, PeerAuthentication
from analyzer.model.report import RunResult
from analyzer.model.scope import Scope
from analyzer.model.traffic import Traffic
from analyzer.sample import catalogue
from analyzer.sample.traffic import SampleTrafficSource
from analyzer.write.publish import check_writable, publish

log = logging.getLogger("mtls_readiness")


class TrafficSource(Protocol):
    @property
    def source(self) -> str: ...

    def collect(self, window_start: datetime, window_end: datetime) -> Traffic: ...


def run_id_for(moment: datetime) -> str:
    return moment.strftime("%Y%m%dT%H%M%SZ")


def load_policies(config: ReportConfig) -> Inventory:
    if config.policies_from == "kube":
        from analyzer.collect.kube import read_cluster  # the kubernetes client loads slowly

        return read_cluster(
            context=config.kube_context,
            kubeconfig=config.kubeconfig,
            timeout=config.kube_timeout,
            cluster=config.cluster,
            root_namespace=config.root_namespace,
        )
    return load_inventory(Path(config.policies_from), cluster=config.cluster, root_namespace=config.root_namespace)


def prometheus_source(config: ReportConfig) -> TrafficSource:
    from analyzer.collect.prometheus import PrometheusClient, PrometheusTrafficSource

    if config.prometheus is None or not config.prometheus.url:
        raise UserError(
            "--prometheus-url is required (or MTLS_READINESS_PROMETHEUS_URL), e.g. http://prometheus.istio-system:9090"
        )
    from analyzer.collect.matchers import namespace_matchers

    # The namespace scope is pushed into the PromQL; the analysis filters again (scope_of).
    scoped = namespace_matchers(config.namespaces, config.exclude_namespaces)
    return PrometheusTrafficSource(PrometheusClient(replace(config.prometheus, scope_matchers=tuple(scoped))))


def scope_of(config: ReportConfig) -> Scope:
    """What the run looks at, as the analysis and the result record it."""
    return Scope(
        namespaces=list(config.namespaces),
        exclude_namespaces=list(config.exclude_namespaces),
        prometheus_selector=list(config.prometheus.selector) if config.prometheus else [],
    )


def _window(config: ReportConfig) -> timedelta:
    try:
        return config.window
    except ValueError as exc:
        raise UserError(f"--lookback: {exc}") from None


def collect_window(
    source: TrafficSource, config: ReportConfig, now: datetime | None = None
) -> tuple[Traffic, datetime]:
    """The lookback window ending `now` (default: this second), collected from `source`."""
    window = _window(config)
    now = (now or datetime.now(UTC)).replace(microsecond=0)
    return source.collect(now - window, now), now


def _settings(config: ReportConfig, now: datetime) -> Settings:
    """The analysis settings of a run that ends `now`: the report and what-if share them."""
    return Settings(
        run_id=run_id_for(now),
        generated_at=now,
        lookback=config.lookback,
        root_namespace=config.root_namespace,
        cluster=config.cluster,
        scope=scope_of(config),
    )


def analyse_run(
    inventory: Inventory, source: TrafficSource, config: ReportConfig, now: datetime | None = None
) -> RunResult:
    """Collect traffic and analyse it: everything but writing."""
    started = time.monotonic()
    traffic, now = collect_window(source, config, now)
    settings = _settings(config, now)
    result = analyse(inventory, traffic, settings)
    log.info(
        "analysed %d workloads, %d namespaces, %d edges in %.1fs",
        len(result.workloads),
        len(result.namespaces),
        len(result.edges),
        time.monotonic() - started,
    )
    return result


def sample_inputs(name: str = "demo", now: datetime | None = None) -> tuple[Inventory, SampleTrafficSource]:
    if name not in catalogue.MESHES:
        raise UserError(f"no sample mesh {name!r}; choose one of {', '.join(sorted(catalogue.MESHES))}")
    mesh = catalogue.MESHES[name]()
    now = (now or datetime.now(UTC)).replace(microsecond=0)
    inventory = build_inventory(((m, f"sample mesh {name}") for m in mesh.manifests()), cluster="")
    # Pod and node addresses come from what a cluster would run: attribution resolves them.
    inventory.clients = build_inventory(
        ((o, f"sample mesh {name}") for o in mesh.cluster_objects()), cluster=""
    ).clients
    return inventory, SampleTrafficSource(mesh, now=now)


def inputs(
    config: ReportConfig, *, sample: str | None = None, now: datetime | None = None
) -> tuple[Inventory, TrafficSource]:
    """Where policies and traffic come from: a built-in sample mesh, or the cluster and Prometheus."""
    if sample:
        return sample_inputs(sample, now)
    return load_policies(config), prometheus_source(config)


def report(config: ReportConfig, *, sample: str | None = None) -> tuple[RunResult, Path]:
    """The nightly job: read policies, collect traffic, analyse, publish."""
    now = datetime.now(UTC).replace(microsecond=0)
    check_writable(config.output_dir)
    # The previous run, for night-over-night changes: read first and cut down to what the
    # comparison reads (a Baseline), so it is never whole in memory beside this run (on a big
    # mesh the two results added ~100 MiB to the peak at 40,000 edges).
    previous = baseline(_previous_run(config.output_dir))
    _give_back_memory()
    inventory, source = inputs(config, sample=sample, now=now)
    result = analyse_run(inventory, source, config, now)
    result.changes = compare(previous, result)
    folder = publish(
        result,
        config.output_dir,
        keep_runs=config.keep_runs,
        keep_days=config.keep_days,
        lock_timeout=config.lock_timeout,
    )
    if folder.name != result.run_id:  # two runs in one second: the folder's name is the id written
        result = replace(result, run_id=folder.name)
    if config.pushgateway is not None:
        _push_metrics(result, config)
    return result, folder


def _give_back_memory() -> None:
    """Return the freed heap to the system (glibc keeps it otherwise): the previous run, read
    whole and dropped, would else stay in the job's resident memory under this run's peak."""
    gc.collect()
    with contextlib.suppress(OSError, AttributeError):  # not glibc: nothing to give back this way
        ctypes.CDLL("libc.so.6").malloc_trim(0)


def _push_metrics(result: RunResult, config: ReportConfig) -> None:
    """After publication: a failed push warns and exits 2 (the report stands, but tonight's
    alerting signal is lost, and the Job's failed status is then the only one left)."""
    from analyzer.collect.pushgateway import push
    from analyzer.write.metrics import registry

    assert config.pushgateway is not None
    try:
        push(registry(result), config.pushgateway)
    except UserError as exc:
        log.warning("%s", exc)
        result.errors.append(f"metrics not pushed: {exc}")


def _previous_run(output_dir: Path) -> RunResult | None:
    """The published run to compare with; an unreadable one is a warning, never a failed night."""
    try:
        return latest_run(output_dir, timeline=False)
    except UserError as exc:
        log.warning("not comparing with the previous run: %s", exc)
        return None


def read_proposal(
    objects: Iterable[tuple[dict, str]], where: str, warnings: list[str] | None = None
) -> list[PeerAuthentication]:
    """The PeerAuthentications among (object, origin) pairs, read strictly: a malformed one is an
    error naming its origin, never skipped (a gate must not pass a proposal it did not read).
    Objects of other kinds are ignored with one warning each, appended to `warnings` (else logged)."""
    proposed = []
    for obj, origin in objects:
        kind = obj.get("kind") if isinstance(obj, dict) else None
        meta = obj.get("metadata") if isinstance(obj, dict) else None
        name = meta.get("name", "?") if isinstance(meta, dict) else "?"
        if kind == "PeerAuthentication":
            try:
                proposed.append(proposal_policy(obj))
            except ValueError as exc:
                raise UserError(f"{origin}: PeerAuthentication {name}: {exc}; fix the proposal") from None
        elif isinstance(kind, str) and kind:
            note = f"{origin}: ignored {kind} {name}: only PeerAuthentications are proposed"
            if warnings is None:
                log.warning("%s", note)
            else:
                warnings.append(note)
        else:
            raise UserError(f"{origin}: not a Kubernetes object (no kind); give PeerAuthentication manifests")
    if not proposed:
        raise UserError(f"{where}: no PeerAuthentication found; give a YAML file with at least one")
    return proposed


_SPEC_FIELDS = {"selector", "mtls", "portLevelMtls"}


def _mode(value: object, field: str) -> Mode:
    if value is None:
        return Mode.UNSET
    if not isinstance(value, str) or value not in Mode.__members__:
        raise ValueError(f"{field} is {value!r}; the API accepts UNSET, DISABLE, PERMISSIVE or STRICT (in capitals)")
    return Mode(value)


def _map(value: object, field: str) -> dict:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise ValueError(f"{field} must be a map, not {type(value).__name__}")
    return value


def proposal_policy(obj: dict) -> PeerAuthentication:
    """One proposed PeerAuthentication, checked the way the API server and istiod's validation would:
    raises ValueError saying what is wrong."""
    group = str(obj.get("apiVersion", "")).split("/")[0]
    if group != "security.istio.io":
        raise ValueError(f"apiVersion {obj.get('apiVersion')!r} is not security.istio.io/v1")
    meta = _map(obj.get("metadata"), "metadata")
    name, namespace = meta.get("name"), meta.get("namespace", "default")
    if not isinstance(name, str) or not name:
        raise ValueError("metadata.name is missing")
    if not isinstance(namespace, str) or not namespace:
        raise ValueError("metadata.namespace must be a name")
    spec = _map(obj.get("spec"), "spec")
    unknown = sorted(set(spec) - _SPEC_FIELDS)
    if unknown:
        raise ValueError(f"spec.{unknown[0]} is not a PeerAuthentication field")
    selector = _map(_map(spec.get("selector"), "spec.selector").get("matchLabels"), "spec.selector.matchLabels")
    if any(isinstance(v, dict | list) or v is None for v in selector.values()):
        raise ValueError("spec.selector.matchLabels values must be strings")
    mode = _mode(_map(spec.get("mtls"), "spec.mtls").get("mode"), "spec.mtls.mode")
    ports: dict[int, Mode] = {}
    for port, setting in _map(spec.get("portLevelMtls"), "spec.portLevelMtls").items():
        if not str(port).isdigit() or not 1 <= int(str(port)) <= 65535:
            raise ValueError(f"spec.portLevelMtls port {port!r} is not a port number (1-65535)")
        ports[int(str(port))] = _mode(
            _map(setting, f"spec.portLevelMtls.{port}").get("mode"), f"spec.portLevelMtls.{port}.mode"
        )
    if ports and not selector:
        raise ValueError("spec.portLevelMtls needs a selector (Istio rejects it on a namespace-wide policy)")
    return PeerAuthentication(
        namespace=namespace,
        name=name,
        created=datetime.now(UTC),
        selector={str(k): str(v) for k, v in selector.items()},
        mode=mode,
        port_modes=ports,
    )


def read_apply_file(path: Path) -> Iterator[tuple[dict, str]]:
    """The objects of `--apply FILE`, each with "FILE (document N)"; bad YAML is an error naming it."""
    try:
        with path.open(encoding="utf-8") as stream:
            documents = list(yaml.load_all(stream, Loader=SAFE_LOADER))
    except FileNotFoundError:
        raise UserError(f"--apply {path}: no such file; give the YAML of the proposed PeerAuthentication(s)") from None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = f" line {mark.line + 1}" if mark else ""
        problem = (exc.problem or exc.context or "invalid YAML").strip()
        raise UserError(f"--apply {path}:{line}: {problem}; fix the YAML") from None
    except (yaml.YAMLError, UnicodeDecodeError, OSError) as exc:
        raise UserError(f"--apply {path}: cannot read ({exc}); fix the file") from None
    for index, doc in enumerate(documents, start=1):
        origin = f"--apply {path} (document {index})"
        if doc is None:
            continue
        if isinstance(doc, dict) and str(doc.get("kind", "")).endswith("List") and isinstance(doc.get("items"), list):
            for item in doc["items"]:
                yield (item if isinstance(item, dict) else {}), origin
        else:
            yield (doc if isinstance(doc, dict) else {}), origin


def predict_proposal(
    config: ReportConfig,
    proposed: list[PeerAuthentication],
    *,
    sample: str | None = None,
    now: datetime | None = None,
) -> Prediction:
    """Collect the window's traffic and predict which plaintext clients `proposed` would cut off,
    with the report's own Analysis: the same cluster filter and rules of doubt."""
    _window(config)  # a bad --lookback fails before the cluster is read
    now = (now or datetime.now(UTC)).replace(microsecond=0)
    inventory, source = inputs(config, sample=sample, now=now)
    traffic, _ = collect_window(source, config, now)
    settings = _settings(config, now)
    return predict(Analysis(inventory, traffic, settings), proposed)


def read_authz_proposal(
    objects: Iterable[tuple[dict, str]], root_namespace: str, warnings: list[str]
) -> list[AuthorizationPolicy]:
    """The AuthorizationPolicies among (object, origin) pairs, read strictly by the report's own
    reader: a malformed one is an error naming it. Other kinds are ignored with a warning."""
    from analyzer.collect.manifests import ObjectError, read_authorization_policy

    proposed = []
    for obj, origin in objects:
        kind = obj.get("kind") if isinstance(obj, dict) else None
        meta = obj.get("metadata") if isinstance(obj, dict) else None
        name = meta.get("name", "?") if isinstance(meta, dict) else "?"
        if kind != "AuthorizationPolicy":
            warnings.append(f"{origin}: ignored {kind} {name}: only AuthorizationPolicies are proposed with them")
            continue
        if str(obj.get("apiVersion", "")).split("/")[0] != "security.istio.io":
            raise UserError(f"{origin}: AuthorizationPolicy {name}: apiVersion is not security.istio.io/v1")
        try:
            policy, notes = read_authorization_policy(obj)
        except ObjectError as exc:
            raise UserError(f"{origin}: AuthorizationPolicy {name}: {exc}; fix the proposal") from None
        proposed.append(replace(policy, created=datetime.now(UTC)))
        warnings += [f"{origin}: AuthorizationPolicy {policy.ref}: {note}" for note in notes]
    return proposed


def predict_authz_proposal(
    config: ReportConfig, proposed: list[AuthorizationPolicy], *, sample: str | None = None
) -> Prediction:
    from analyzer.analyse.authz_whatif import predict_authz

    _window(config)
    now = datetime.now(UTC).replace(microsecond=0)
    inventory, source = inputs(config, sample=sample, now=now)
    traffic, _ = collect_window(source, config, now)
    return predict_authz(Analysis(inventory, traffic, _settings(config, now)), proposed)


def what_if(config: ReportConfig, proposal: Path, *, sample: str | None = None) -> Prediction:
    """Predict which observed clients the PeerAuthentications (plaintext cut off) or the
    AuthorizationPolicies (clients denied) in file `proposal` would affect; not both in one file."""
    warnings: list[str] = []
    objects = list(read_apply_file(proposal))
    kinds = {obj.get("kind") for obj, _ in objects}
    if "AuthorizationPolicy" in kinds:
        if "PeerAuthentication" in kinds:
            raise UserError(
                f"--apply {proposal}: holds PeerAuthentications and AuthorizationPolicies; "
                "propose them in separate files, one what-if each"
            )
        policies = read_authz_proposal(objects, config.root_namespace, warnings)
        prediction = predict_authz_proposal(config, policies, sample=sample)
        prediction.warnings[:0] = warnings
        return prediction
    proposed = read_proposal(iter(objects), f"--apply {proposal}", warnings)
    prediction = predict_proposal(config, proposed, sample=sample)
    prediction.warnings[:0] = warnings
    return prediction
