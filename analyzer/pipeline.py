"""collect -> analyse -> write, wired once for the CLI, the demo and the notebooks."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Protocol

from analyzer.analyse.changes import compare
from analyzer.analyse.readiness import Settings, analyse
from analyzer.analyse.whatif import Prediction, predict
from analyzer.collect.manifests import build_inventory
from analyzer.collect.policy_files import iter_objects, load_inventory
from analyzer.collect.run_store import PublishedRun, latest_run
from analyzer.config import ReportConfig
from analyzer.errors import UserError
from analyzer.model.inventory import Inventory
from analyzer.model.policy import PeerAuthentication
from analyzer.model.report import RunResult
from analyzer.model.traffic import Traffic
from analyzer.sample import catalogue
from analyzer.sample.traffic import SampleTrafficSource
from analyzer.write.publish import check_writable, publish

log = logging.getLogger("mtls_readiness")


class TrafficSource(Protocol):
    source: str

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
        )
    return load_inventory(Path(config.policies_from), cluster=config.cluster)


def prometheus_source(config: ReportConfig) -> TrafficSource:
    from analyzer.collect.prometheus import PrometheusClient, PrometheusTrafficSource

    if config.prometheus is None or not config.prometheus.url:
        raise UserError(
            "--prometheus-url is required (or MTLS_READINESS_PROMETHEUS_URL), e.g. http://prometheus.istio-system:9090"
        )
    return PrometheusTrafficSource(PrometheusClient(config.prometheus))


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


def analyse_run(
    inventory: Inventory, source: TrafficSource, config: ReportConfig, now: datetime | None = None
) -> RunResult:
    """Collect traffic and analyse it: everything but writing."""
    started = time.monotonic()
    traffic, now = collect_window(source, config, now)
    settings = Settings(
        run_id=run_id_for(now),
        generated_at=now,
        lookback=config.lookback,
        root_namespace=config.root_namespace,
        cluster=config.cluster,
    )
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
    inventory, source = inputs(config, sample=sample, now=now)
    result = analyse_run(inventory, source, config, now)
    # Read the previous run before this one replaces `latest`: night-over-night changes.
    changes = compare(result, _previous_run(config.output_dir))
    folder = publish(result, config.output_dir, extra_summary={"changes": changes.to_dict()})
    if config.pushgateway is not None:
        _push_metrics(result, changes.to_dict(), config)
    return result, folder


def _push_metrics(result: RunResult, changes: dict, config: ReportConfig) -> None:
    """After publication: a failed push warns and exits 2 (the report stands, but tonight's
    alerting signal is lost, and the Job's failed status is then the only one left)."""
    from analyzer.collect.pushgateway import push
    from analyzer.write.metrics import registry

    assert config.pushgateway is not None
    try:
        push(registry(result, changes), config.pushgateway)
    except UserError as exc:
        log.warning("%s", exc)
        result.errors.append(f"metrics not pushed: {exc}")


def _previous_run(output_dir: Path) -> PublishedRun | None:
    """The published run to compare with; an unreadable one is a warning, never a failed night."""
    try:
        return latest_run(output_dir)
    except UserError as exc:
        log.warning("not comparing with the previous run: %s", exc)
        return None


def read_proposal(objects: Iterable[tuple[dict, str]], where: str) -> list[PeerAuthentication]:
    """The PeerAuthentications among (object, origin) pairs; `where` names the input in the error."""
    proposed = build_inventory(objects).peer_authentications
    if not proposed:
        raise UserError(f"{where}: no PeerAuthentication found; give a YAML file with at least one")
    return proposed


def predict_proposal(
    config: ReportConfig,
    proposed: list[PeerAuthentication],
    *,
    sample: str | None = None,
    now: datetime | None = None,
) -> Prediction:
    """Collect the window's traffic and predict which plaintext clients `proposed` would cut off."""
    _window(config)  # a bad --lookback fails before the cluster is read
    now = (now or datetime.now(UTC)).replace(microsecond=0)
    inventory, source = inputs(config, sample=sample, now=now)
    traffic, _ = collect_window(source, config, now)
    return predict(inventory, traffic, proposed, config.root_namespace)


def what_if(config: ReportConfig, proposal: Path, *, sample: str | None = None) -> Prediction:
    """Predict which observed plaintext clients the PeerAuthentications in file `proposal` would cut off."""
    return predict_proposal(config, read_proposal(iter_objects(proposal), f"--apply {proposal}"), sample=sample)
