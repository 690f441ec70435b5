"""Effective PeerAuthentication mode per workload and port, resolved the way istiod does.

Reference: docs/semantics.md, section 1 (istio/istio pilot/pkg/model/authentication.go and
pilot/pkg/security/authn/policy_applier.go). Pure: never talks to the cluster.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta

from analyzer.model.policy import Mode, PeerAuthentication

MESH = "mesh"
NAMESPACE = "namespace"
WORKLOAD = "workload"
DEFAULT = "default"


@dataclass(frozen=True, slots=True)
class Resolution:
    """The answer for one workload: base mode, per-port overrides, and who decided them."""

    mode: Mode
    source: str  # "namespace/name" of the deciding policy, or "default"
    level: str  # mesh, namespace, workload or default
    port_modes: dict[int, Mode] = field(default_factory=dict)
    port_source: str = ""  # the workload-level policy the port modes came from

    def for_port(self, port: int) -> Mode:
        return self.port_modes.get(port, self.mode)

    def modes(self) -> set[Mode]:
        return {self.mode, *self.port_modes.values()}

    def everywhere(self, mode: Mode) -> bool:
        """True if every port (declared or not) has `mode`."""
        return self.modes() == {mode}

    def describe_ports(self, ports: Iterable[int] = ()) -> dict[int, Mode]:
        return {p: self.for_port(p) for p in sorted({*ports, *self.port_modes})}


def _age_key(pa: PeerAuthentication) -> tuple[datetime, str, str]:
    # istiod's configCompareByCreationTime: oldest first, then name, then namespace.
    return (pa.created, pa.name, pa.namespace)


class PolicyEngine:
    """Resolves modes from a fixed set of PeerAuthentications."""

    def __init__(self, policies: Iterable[PeerAuthentication], root_namespace: str = "istio-system"):
        self.root_namespace = root_namespace
        self.policies: list[PeerAuthentication] = sorted(policies, key=_age_key)
        self._wide: dict[str, PeerAuthentication] = {}  # oldest selector-less policy per namespace
        self._selective: dict[str, list[PeerAuthentication]] = defaultdict(list)
        for pa in self.policies:  # already oldest first
            if not pa.selector:
                self._wide.setdefault(pa.namespace, pa)
            elif pa.namespace != root_namespace:  # root-namespace selector policies are dropped
                self._selective[pa.namespace].append(pa)

    # -- questions --------------------------------------------------------------------------

    def mesh_policy(self) -> PeerAuthentication | None:
        return self._wide.get(self.root_namespace)

    def namespace_policy(self, namespace: str) -> PeerAuthentication | None:
        if namespace == self.root_namespace:
            return None
        return self._wide.get(namespace)

    def workload_policy(self, namespace: str, labels: dict[str, str]) -> PeerAuthentication | None:
        return next((pa for pa in self._selective.get(namespace, ()) if pa.matches(labels)), None)

    def has_workload_policies(self, namespace: str) -> bool:
        return bool(self._selective.get(namespace))

    def resolve(self, namespace: str, labels: dict[str, str]) -> Resolution:
        mode, source, level = Mode.PERMISSIVE, DEFAULT, DEFAULT
        workload_pa = self.workload_policy(namespace, labels)
        for lvl, pa in (
            (MESH, self.mesh_policy()),
            (NAMESPACE, self.namespace_policy(namespace)),
            (WORKLOAD, workload_pa),
        ):
            if pa is not None and pa.mode is not Mode.UNSET:
                mode, source, level = pa.mode, pa.ref, lvl
        if workload_pa is None or not workload_pa.port_modes:
            return Resolution(mode=mode, source=source, level=level)
        ports = {port: (m if m is not Mode.UNSET else mode) for port, m in workload_pa.port_modes.items()}
        return Resolution(mode, source, level, ports, workload_pa.ref)

    # -- hypothetical changes ---------------------------------------------------------------

    def with_applied(self, proposed: Iterable[PeerAuthentication]) -> PolicyEngine:
        """The engine after `kubectl apply` of `proposed`: same namespace/name replaces, keeping
        the original creationTimestamp (as the API server does); anything new is the newest."""
        by_ref = {pa.ref: pa for pa in self.policies}
        # Newer than everything already there even if the cluster's clock runs ahead of ours:
        # otherwise a proposed second namespace-wide policy would win instead of being ignored.
        now = max([datetime.now(UTC), *(pa.created + timedelta(seconds=1) for pa in self.policies)])
        for pa in proposed:
            existing = by_ref.get(pa.ref)
            created = existing.created if existing else now
            by_ref[pa.ref] = replace(pa, created=created, hypothetical=True)
        return PolicyEngine(by_ref.values(), self.root_namespace)

    def wide_strict(self, namespace: str) -> PeerAuthentication:
        """The namespace-wide (or, in the root namespace, mesh-wide) STRICT policy an operator
        would apply: the existing one edited (a newer one would be ignored) or a new one."""
        existing = self._wide.get(namespace)
        if existing is not None:
            return replace(existing, mode=Mode.STRICT, hypothetical=True)
        # Never reuse the name of a workload-level policy: applying would overwrite it.
        taken = {pa.name for pa in self.policies if pa.namespace == namespace}
        name = next(
            n for n in ("default", *(f"default-strict-{i}" for i in range(1, len(taken) + 2))) if n not in taken
        )
        return PeerAuthentication(
            namespace=namespace,
            name=name,
            created=datetime.now(UTC),
            mode=Mode.STRICT,
            hypothetical=True,
        )

    # -- misconfiguration -------------------------------------------------------------------

    def ignored_policies(self) -> list[str]:
        """Policies istiod silently ignores, with the reason; worth telling the operator."""
        notes: list[str] = []
        seen_wide: dict[str, PeerAuthentication] = {}
        for pa in self.policies:  # hypothetical ones too: what-if reports a proposal istiod would ignore
            if pa.selector and pa.namespace == self.root_namespace:
                notes.append(
                    f"PeerAuthentication {pa.ref} is ignored: istiod drops policies with a selector "
                    f"in the root namespace {self.root_namespace}"
                )
            elif not pa.selector:
                winner = seen_wide.setdefault(pa.namespace, pa)
                if winner is not pa:
                    scope = "mesh" if pa.namespace == self.root_namespace else "namespace"
                    notes.append(
                        f"PeerAuthentication {pa.ref} is ignored: the older {scope}-wide policy "
                        f"{winner.ref} wins; edit that one instead"
                    )
            if pa.port_modes and not pa.selector:
                notes.append(
                    f"PeerAuthentication {pa.ref} sets portLevelMtls without a selector, which "
                    "Istio rejects; its port settings are ignored"
                )
        return notes

    def shadowed_workload_policies(self, namespace: str, labels: dict[str, str]) -> list[str]:
        """Workload policies that match but lose to an older one (no merging in istiod)."""
        matching = [pa for pa in self._selective.get(namespace, ()) if pa.matches(labels)]
        return [pa.ref for pa in matching[1:]]
