"""Join policy with traffic: edges, workload, namespace and mesh verdicts (docs/contract.md).

Pure: takes the inventory, the collected traffic and settings, returns a RunResult.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime
from functools import cached_property

import pandas as pd

from analyzer.analyse import advice, authz_findings, blind_spots, remediation, scoping
from analyzer.analyse.attribution import Window, attribute
from analyzer.analyse.classify import MTLS, PLAINTEXT, UNREADABLE, classify
from analyzer.analyse.figures import doubts, plaintext_points, summarise
from analyzer.analyse.lint import lint
from analyzer.analyse.policy_engine import NAMESPACE, WORKLOAD, PolicyEngine, Resolution
from analyzer.analyse.verdicts import (
    UNNAMED,
    Evidence,
    combine,
    global_doubts,
    judge_change,
    judge_workload,
    scoped_doubts,
    source_name,
)
from analyzer.analyse.whatif import predict
from analyzer.model.inventory import Dataplane, Inventory, Workload
from analyzer.model.policy import Mode, PeerAuthentication
from analyzer.model.report import EdgeResult, MeshResult, NamespaceResult, RunResult, Verdict, WorkloadResult
from analyzer.model.scope import Scope
from analyzer.model.traffic import EDGE_KEY, UNIT_BY_PROTOCOL, Traffic


@dataclass(frozen=True, slots=True)
class Settings:
    run_id: str
    generated_at: datetime
    lookback: str
    root_namespace: str = "istio-system"
    cluster: str = ""
    scope: Scope = field(default_factory=Scope)  # --namespace / --exclude-namespace / --prometheus-selector


class Analysis:
    """Builds a RunResult. Kept as a class only to share the indexes between the steps."""

    def __init__(self, inventory: Inventory, traffic: Traffic, settings: Settings):
        self.inventory = inventory
        self.traffic = traffic
        self.settings = settings
        self.engine = PolicyEngine(inventory.peer_authentications, settings.root_namespace)
        self._resolved: dict[tuple[str, str | None], Resolution] = {}
        self.doubts = global_doubts(traffic)
        self.observations = classify(self._in_scope(self._this_cluster(traffic.observations)), inventory)
        # The range query returns every non-mTLS step; `security` tells plaintext from unreadable.
        self.timeline = classify(self._in_scope(self._this_cluster(traffic.timeline)), inventory)
        self.cluster = settings.cluster or self._single_cluster()
        self.evidence: dict[tuple[str, str], Evidence] = defaultdict(Evidence)
        self.unattributed: dict[str, Evidence] = defaultdict(Evidence)
        self._gather_evidence()
        self.blind = blind_spots.find(inventory, traffic, self.engine, settings.root_namespace)

    # -- inputs -----------------------------------------------------------------------------

    def _this_cluster(self, frame: pd.DataFrame) -> pd.DataFrame:
        if not self.settings.cluster or frame.empty:
            return frame
        return frame[frame["destination_cluster"].isin([self.settings.cluster, "", "unknown"])]

    def _in_scope(self, frame: pd.DataFrame) -> pd.DataFrame:
        """Traffic to destinations in scope only; clients outside it that call into it stay."""
        return scoping.in_scope(frame, self.settings.scope)

    def _single_cluster(self) -> str:
        clusters = set(self.traffic.observations.get("destination_cluster", pd.Series(dtype=object)).unique()) - UNNAMED
        return clusters.pop() if len(clusters) == 1 else ""

    def _gather_evidence(self) -> None:
        obs = self.observations
        if obs.empty:
            return
        grouped = obs.groupby(["destination_namespace", "destination_workload", "security"], dropna=False)[
            "count"
        ].sum()
        for (ns, wl, security), count in grouped.items():
            target = self.unattributed[ns] if wl in UNNAMED else self.evidence[(ns, wl)]
            if security == MTLS:
                target.mtls += count
            elif security == PLAINTEXT:
                target.plaintext += count
            else:
                target.unreadable += count
        # A series that stayed flat all window is in the answer with 0: not a plaintext source.
        plain = obs[(obs["security"] == PLAINTEXT) & (obs["count"] > 0)]
        for row in plain[
            ["destination_namespace", "destination_workload", "source_namespace", "source_workload"]
        ].itertuples(index=False):
            if (
                row.destination_workload not in UNNAMED
                and (row.destination_namespace, row.destination_workload) in self.evidence
            ):
                self.evidence[(row.destination_namespace, row.destination_workload)].plaintext_sources.add(
                    source_name(row.source_namespace, row.source_workload)
                )

    def doubts_for(self, namespace: str, name: str, workload: Workload | None) -> list[str]:
        doubts = list(self.doubts)
        doubts += scoped_doubts(self.traffic, self.inventory, namespace, name, self.settings.root_namespace)
        doubts += self.blind.doubts.get((namespace, name), ())  # no telemetry there: NO_TRAFFIC/READY mean nothing
        ev = self.evidence.get((namespace, name))
        if ev is not None and ev.unreadable > 0:
            doubts.append(
                f"{ev.unreadable:g} requests/connections without a readable connection_security_policy label "
                "(check Telemetry API tagOverrides)"
            )
        if workload is None and self.engine.has_workload_policies(namespace):
            doubts.append(
                "labels unknown: the workload is not in the inventory, so workload-level policies cannot be matched"
            )
        return doubts

    # -- results ----------------------------------------------------------------------------

    def destination_keys(self) -> list[tuple[str, str]]:
        keys = set(self.inventory.workloads) | set(self.evidence)
        return sorted(k for k in keys if self.settings.scope.includes(k[0]))

    def resolve(self, namespace: str, workload: Workload | None, engine: PolicyEngine | None = None) -> Resolution:
        if engine is not None and engine is not self.engine:  # what-if's proposed policies: not kept
            return engine.resolve(namespace, workload.labels if workload else {})
        # Edges share destinations (eight per workload on the benchmark mesh): resolved once each.
        key = (namespace, workload.name if workload else None)
        found = self._resolved.get(key)
        if found is None:
            found = self._resolved[key] = self.engine.resolve(namespace, workload.labels if workload else {})
        return found

    def workloads(self) -> list[WorkloadResult]:
        results = []
        for ns, name in self.destination_keys():
            workload = self.inventory.workload(ns, name)
            resolution = self.resolve(ns, workload)
            evidence = self.evidence.get((ns, name), Evidence())
            doubts = self.doubts_for(ns, name, workload)
            verdict, reasons = judge_workload(workload, resolution, evidence, doubts)
            if workload is None:
                reasons.insert(0, "seen in traffic but not in the inventory (assumed to have a sidecar)")
            shadowed = self.engine.shadowed_workload_policies(ns, workload.labels) if workload else []
            if shadowed:
                reasons.append(f"ignored by istiod (an older workload policy wins): {', '.join(shadowed)}")
            results.append(
                WorkloadResult(
                    cluster=(workload.cluster if workload and workload.cluster else self.cluster),
                    namespace=ns,
                    workload=name,
                    kind=workload.kind if workload else "",
                    dataplane=(workload.dataplane.value if workload else Dataplane.SIDECAR.value),
                    mode=resolution.mode.value,
                    mode_source=resolution.source,
                    port_modes={
                        p: m.value for p, m in resolution.describe_ports(workload.ports if workload else ()).items()
                    },
                    mtls_count=round(evidence.mtls, 3),
                    plaintext_count=round(evidence.plaintext, 3),
                    plaintext_sources=sorted(evidence.plaintext_sources),
                    verdict=verdict,
                    reasons=reasons,
                    in_inventory=workload is not None,
                    remediation=self._workload_remediation(verdict, workload, resolution),
                )
            )
        return results

    def _workload_remediation(self, verdict: Verdict, workload: Workload | None, resolution: Resolution) -> str:
        if verdict is not Verdict.READY or workload is None:
            return ""
        own = self.engine.workload_policy(workload.namespace, workload.labels)
        return remediation.strict_for_workload(workload, own, self._by_namespace[workload.namespace])

    @cached_property
    def _by_namespace(self) -> dict[str, remediation.Neighbours]:
        # Built once: scanning the whole inventory for each READY workload was quadratic
        # (a second of the 4 s analysing 5,000 workloads).
        grouped: dict[str, list[Workload]] = defaultdict(list)
        for w in self.inventory.workloads.values():
            grouped[w.namespace].append(w)
        return {ns: remediation.Neighbours(found) for ns, found in grouped.items()}

    @cached_property
    def _members(self) -> dict[str, list[_Member]]:
        """Every meshed destination (or one seen only in traffic, assumed meshed) by namespace,
        with what it adds to its namespace's and the mesh's verdict. Built once: linear."""
        members: dict[str, list[_Member]] = defaultdict(list)
        for ns, name in self.destination_keys():
            workload = self.inventory.workload(ns, name)
            if workload is not None and not workload.meshed:
                continue
            resolution = self.resolve(ns, workload)
            evidence = self.evidence.get((ns, name), Evidence())
            doubts = self.doubts_for(ns, name, workload)
            verdict = judge_change(resolution, evidence, doubts)
            why = ""
            if verdict is Verdict.BLOCKED:
                why = f"plaintext from {', '.join(sorted(evidence.plaintext_sources)) or 'an unnamed client'}"
            elif verdict is Verdict.UNKNOWN:
                why = "; ".join(doubts) or f"{evidence.unreadable:g} requests/connections could not be classified"
            members[ns].append(_Member(f"{ns}/{name}", verdict, _holders(resolution), why))
        for ns, ev in self.unattributed.items():
            if ev.plaintext or ev.unreadable:  # it may be any workload of the namespace
                why = f"{ev.plaintext + ev.unreadable:g} non-mTLS requests/connections to an unnamed workload"
                members[ns].append(_Member("", Verdict.UNKNOWN, (), why))
        return members

    def _judge_scope(self, members: list[_Member], levels: tuple[str, ...]) -> tuple[Verdict, list[str], list[str]]:
        """Verdict over `members`, the reasons, and the exceptions (policies at `levels`) holding one below STRICT."""
        verdict = combine([m.verdict for m in members])
        reasons = []
        for m in members:
            if m.verdict is verdict and verdict in (Verdict.BLOCKED, Verdict.UNKNOWN):
                held = [ref for _, ref in m.holders]
                by = f" (held below STRICT by {', '.join(held)})" if held else ""
                reasons.append(f"{m.namespace_name}: {m.why}{by}")
        if len(reasons) > _MAX_REASONS:
            reasons = [*reasons[:_MAX_REASONS], f"and {len(reasons) - _MAX_REASONS} more"]
        exceptions = sorted({ref for m in members for level, ref in m.holders if level in levels})
        return verdict, reasons, exceptions

    def _remediation(self, wide: PeerAuthentication, already_strict: bool, exceptions: list[str]) -> str:
        """The wide STRICT policy (unless the scope is STRICT already) and an edit of every exception:
        each document changes at least one mode, so none is offered that changes nothing."""
        by_ref = {pa.ref: pa for pa in self.engine.policies}
        docs = [] if already_strict else [wide]
        docs += [remediation.strict_edit(by_ref[ref]) for ref in exceptions if ref in by_ref]
        return "---\n".join(remediation.policy_yaml(pa) for pa in docs)

    def namespaces(self, workloads: list[WorkloadResult]) -> list[NamespaceResult]:
        by_ns: dict[str, list[WorkloadResult]] = defaultdict(list)
        for w in workloads:
            by_ns[w.namespace].append(w)
        names = sorted(
            set(self.inventory.namespaces) | set(by_ns) | {ns for ns in self.unattributed if ns not in UNNAMED}
        )
        names = [ns for ns in names if self.settings.scope.includes(ns)]
        root = self.settings.root_namespace
        results = []
        for ns in names:
            members = by_ns.get(ns, [])
            count = {v: sum(1 for w in members if w.verdict is v) for v in Verdict}
            wide = self.engine.namespace_policy(ns) if ns != root else self.engine.mesh_policy()
            ns_res = self.resolve(ns, None)
            verdict, reasons, exceptions = self._judge_scope(self._members.get(ns, []), (WORKLOAD,))
            yaml_text = ""
            if verdict is Verdict.READY and ns != root:
                yaml_text = self._remediation(self.engine.wide_strict(ns), ns_res.mode is Mode.STRICT, exceptions)
            elif verdict is Verdict.READY:
                reasons.append("the root namespace follows the mesh-wide policy: see the mesh's remediation")
            namespace_obj = self.inventory.namespaces.get(ns)
            injection = ""
            if namespace_obj is not None:
                injection = (
                    "sidecar"
                    if namespace_obj.injection_enabled
                    else "ambient"
                    if namespace_obj.ambient_enabled
                    else "none"
                )
            results.append(
                NamespaceResult(
                    cluster=self.cluster,
                    namespace=ns,
                    mode=ns_res.mode.value,
                    mode_source=wide.ref if wide is not None and wide.mode is not Mode.UNSET else ns_res.source,
                    workloads=len(members),
                    enforced=count[Verdict.ENFORCED],
                    ready=count[Verdict.READY],
                    blocked=count[Verdict.BLOCKED],
                    no_traffic=count[Verdict.NO_TRAFFIC],
                    unknown=count[Verdict.UNKNOWN],
                    not_meshed=count[Verdict.NOT_MESHED],
                    disabled=count[Verdict.DISABLED],
                    plaintext_count=round(sum(w.plaintext_count for w in members), 3),
                    mtls_count=round(sum(w.mtls_count for w in members), 3),
                    verdict=verdict,
                    injection=injection,
                    reasons=reasons,
                    remediation=yaml_text,
                    exceptions=exceptions,
                )
            )
        return results

    def mesh(self, workloads: list[WorkloadResult]) -> MeshResult:
        root = self.settings.root_namespace
        mesh_pa = self.engine.mesh_policy()
        mode = mesh_pa.mode if mesh_pa is not None and mesh_pa.mode is not Mode.UNSET else Mode.PERMISSIVE
        source = mesh_pa.ref if mesh_pa is not None and mesh_pa.mode is not Mode.UNSET else "default"
        members = [m for group in self._members.values() for m in group]
        if not members:
            return MeshResult(Verdict.NOT_MESHED, mode.value, source, ["no meshed workload found"])
        verdict, reasons, exceptions = self._judge_scope(members, (NAMESPACE, WORKLOAD))
        # The headline is what-if's own answer for the mesh-wide STRICT policy: they cannot disagree.
        prediction = predict(self, [self.engine.wide_strict(root)])
        clients, edges, behind = len(prediction.clients), len(prediction.edges), len(prediction.untouched_edges)
        if clients or behind:
            reasons.insert(
                0,
                f"a mesh-wide STRICT would cut off {clients} client(s) ({edges} client->destination edge(s)); "
                f"{behind} more client->destination edge(s) behind namespace- or workload-level exceptions",
            )
        yaml_text = self._remediation(self.engine.wide_strict(root), mode is Mode.STRICT, exceptions)
        return MeshResult(
            verdict,
            mode.value,
            source,
            reasons,
            yaml_text if verdict is Verdict.READY else "",
            exceptions=exceptions,
            cut_off_clients=clients,
            cut_off_edges=edges,
            behind_exceptions=behind,
        )

    def edges(self) -> list[EdgeResult]:
        obs = self.observations
        if obs.empty:
            return []
        obs = obs.assign(
            mtls=obs["count"].where(obs["security"] == MTLS, 0.0),
            plaintext=obs["count"].where(obs["security"] == PLAINTEXT, 0.0),
            unreadable=obs["count"].where(obs["security"] == UNREADABLE, 0.0),
        )
        grouped = obs.groupby(EDGE_KEY, as_index=False, dropna=False)[["mtls", "plaintext", "unreadable"]].sum()
        seen = self._plaintext_seen()
        # Read as plain column lists (iterating pandas rows costs a Python call per cell), and
        # judge each destination and each client once: edges share both.
        keys = zip(*(grouped[c].tolist() for c in EDGE_KEY), strict=True)
        counts = zip(*(grouped[c].tolist() for c in ("mtls", "plaintext", "unreadable")), strict=True)
        destinations: dict[tuple[str, str], _Destination] = {}
        kinds: dict[tuple[str, str, str], str] = {}
        results = []
        for key, (mtls, plaintext, unreadable) in zip(keys, counts, strict=True):
            src_cluster, src_ns, src_wl, principal, dst_cluster, dst_ns, dst_wl, service, protocol = key
            dest = destinations.get((dst_ns, dst_wl))
            if dest is None:
                dest = destinations[(dst_ns, dst_wl)] = self._destination(dst_ns, dst_wl)
            kind = kinds.get((src_ns, src_wl, protocol))
            if kind is None:
                kind = kinds[(src_ns, src_wl, protocol)] = advice.client_kind(src_ns, src_wl, protocol, self.inventory)
            total = mtls + plaintext + unreadable
            sent_plaintext = plaintext > 0
            first, last = seen.get(key, (None, None)) if sent_plaintext else (None, None)
            edge = EdgeResult(
                source_cluster=src_cluster,
                source_namespace=src_ns,
                source_workload=src_wl,
                source_principal=principal,
                destination_cluster=dst_cluster,
                destination_namespace=dst_ns,
                destination_workload=dst_wl,
                destination_service=service,
                protocol=protocol,
                unit=UNIT_BY_PROTOCOL.get(protocol, "requests"),
                mtls_count=round(mtls, 3),
                plaintext_count=round(plaintext, 3),
                plaintext_share=round(plaintext / total, 4) if total else 0.0,
                unreadable_count=round(unreadable, 3),
                first_plaintext_seen=first,
                last_plaintext_seen=last,
                destination_mode=dest.mode,
                destination_mode_source=dest.source,
                blocker=sent_plaintext and dest.can_block,
                client_kind=kind if sent_plaintext else "meshed" if mtls > 0 else "unknown",
            )
            if edge.blocker:
                edge.advice = advice.advise(edge, kind, self.inventory, self.settings.root_namespace)
            results.append(edge)
        results.sort(key=lambda e: (not e.blocker, -e.plaintext_count, e.destination_namespace, e.destination_workload))
        return results

    def _destination(self, namespace: str, name: str) -> _Destination:
        workload = self.inventory.workload(namespace, name)
        resolution = self.resolve(namespace, workload)
        return _Destination(
            mode=resolution.mode.value if not resolution.port_modes else _mixed(resolution),
            source=resolution.source,
            # Plaintext blocks STRICT where some port is not STRICT yet; PeerAuthentication does
            # not govern a known workload outside the mesh, so there it blocks nothing.
            can_block=not resolution.everywhere(Mode.STRICT) and (workload is None or workload.meshed),
        )

    def _plaintext_seen(self) -> dict[tuple, tuple[datetime, datetime]]:
        timeline = self.timeline[self.timeline["security"] == PLAINTEXT]
        if timeline.empty:
            return {}
        spans = timeline.groupby(EDGE_KEY, dropna=False)["timestamp"].agg(["min", "max"])
        return {key: (lo.to_pydatetime(), hi.to_pydatetime()) for key, lo, hi in spans.itertuples()}

    def run(self) -> RunResult:
        workloads = self.workloads()
        authz_findings.annotate(
            workloads, self.inventory, self.traffic, self.observations, self.settings.root_namespace
        )
        warnings = list(self.inventory.warnings) + list(self.traffic.warnings) + list(self.inventory.problems)
        warnings += [f"query failed: {q}" for q in self.traffic.failed_queries]
        if not self.traffic.coverage.complete:
            warnings.append(self.traffic.coverage.detail or "Prometheus does not hold the whole lookback window")
        unreadable = sum(1 for w in workloads if any("connection_security_policy" in r for r in w.reasons))
        if unreadable:
            warnings.append(
                f"{unreadable} workload(s) have traffic without a readable connection_security_policy label"
            )
        warnings += self.blind.warnings
        unknown = sum(1 for w in workloads if w.verdict is Verdict.UNKNOWN)
        if unknown:
            warnings.append(f"{unknown} workload(s) are UNKNOWN: the data needed was missing; see their reasons")
        edges, timeline = self.edges(), plaintext_points(self.timeline, PLAINTEXT)
        mesh, scope = scoping.judge_mesh(self.mesh(workloads), self.settings.scope, self.inventory.namespaces)
        attributions, clients = attribute(
            edges,
            self.inventory,
            self.traffic.clients,
            timeline,
            Window(self.traffic.window_start, self.traffic.window_end),
            mtls_from=self._mtls_from(),
            timeline_doubt="; ".join(self.traffic.incomplete),
            step=self.traffic.timeline_step,
        )
        result = RunResult(
            run_id=self.settings.run_id,
            generated_at=self.settings.generated_at,
            lookback=self.settings.lookback,
            window_start=self.traffic.window_start,
            window_end=self.traffic.window_end,
            source=self.traffic.source,
            root_namespace=self.settings.root_namespace,
            workloads=workloads,
            namespaces=self.namespaces(workloads),
            edges=edges,
            mesh=mesh,
            timeline=timeline,
            warnings=warnings,
            errors=list(self.traffic.incomplete),
            misconfigurations=scoping.keep_notes(self.engine.ignored_policies(), scope, self.settings.root_namespace),
            doubts=scoping.keep_doubts(doubts(self.traffic, self.inventory, self.doubts), scope),
            cluster=self.settings.cluster,
            blind_spots=self.blind.spots,
            lint=lint(self.inventory, self.engine, edges, self.settings.root_namespace),
            scope=scope,
            attributions=attributions,
            clients=clients,
        )
        return summarise(result)

    def _mtls_from(self) -> dict[tuple[str, str, str, str], float]:
        """mTLS volume per (client ns, client, destination ns, destination) as the server names it."""
        obs = self.observations
        if obs.empty:
            return {}
        keys = ["source_namespace", "source_workload", "destination_namespace", "destination_workload"]
        # Columns zipped: a MultiIndex's to_dict() costs several times the groupby itself.
        sums = obs[obs["security"] == MTLS].groupby(keys, as_index=False)["count"].sum()
        return dict(zip(zip(*(sums[c].tolist() for c in keys), strict=True), sums["count"].tolist(), strict=True))


_MAX_REASONS = 20


@dataclass(frozen=True, slots=True)
class _Destination:
    """What every edge to one destination shares."""

    mode: str  # destination_mode as the CSV shows it
    source: str  # the policy the mode comes from
    can_block: bool  # plaintext to it blocks STRICT


@dataclass(frozen=True, slots=True)
class _Member:
    """One meshed destination as its namespace and the mesh see it."""

    name: str  # "ns/name", or "" for traffic to a destination Istio could not name
    verdict: Verdict  # judge_change: what it adds to the namespace's verdict
    holders: tuple[tuple[str, str], ...]  # (level, policy ref) holding it below STRICT
    why: str = ""

    @property
    def namespace_name(self) -> str:
        return self.name or "an unnamed workload"


def _holders(resolution: Resolution) -> tuple[tuple[str, str], ...]:
    """The policies (with their level) that keep this resolution below STRICT somewhere."""
    if resolution.everywhere(Mode.STRICT):
        return ()
    held = []
    if resolution.mode is not Mode.STRICT and resolution.level in (NAMESPACE, WORKLOAD):
        held.append((resolution.level, resolution.source))
    if resolution.port_source and any(m is not Mode.STRICT for m in resolution.port_modes.values()):
        held.append((WORKLOAD, resolution.port_source))
    return tuple(dict.fromkeys(held))


def _mixed(resolution: Resolution) -> str:
    ports = ";".join(f"{p}={m.value}" for p, m in sorted(resolution.port_modes.items()))
    return f"{resolution.mode.value} ({ports})"


def analyse(inventory: Inventory, traffic: Traffic, settings: Settings) -> RunResult:
    return Analysis(inventory, traffic, settings).run()
