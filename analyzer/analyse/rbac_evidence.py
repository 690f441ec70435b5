"""Whose 403s: the proxy's RBAC filter or the application (docs/authorization.md).

A plaintext client answered 403 on every request looks "already denied", but the application
answers 403 too, and Envoy's RBAC filter sets no response flag that would tell them apart. Its
own counter of denials (queries.RbacDenials) does, per pod:

- proxy: the RBAC filters on the workload's pods denied about as many requests as its plaintext
  got 403s (or more: they also count denied mTLS requests);
- not-proxy: the RBAC stat is there and denied nothing in the window, so the 403s were the
  application's: the clients are not already denied, STRICT would cut them off;
- unconfirmed: no RBAC series, the query failed, too few denials, or evidence that cannot be tied
  to the workload: the clients stay listed as denied (the reading before this check), with a caveat.

It can only take clients off "already denied" or add a caveat, never add a client there.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field

from analyzer.model.inventory import Inventory
from analyzer.model.traffic import Traffic

PROXY, NOT_PROXY, UNCONFIRMED = "proxy", "not-proxy", "unconfirmed"
# increase() extrapolates each series on its own, so two counters of the same requests rarely
# agree exactly; fewer denials than this share of the 403s means some 403s were not the proxy's.
ENOUGH = 0.9


@dataclass(frozen=True, slots=True)
class Judgement:
    by: str  # PROXY, NOT_PROXY or UNCONFIRMED
    why: str


@dataclass(slots=True)
class _Namespace:
    by_workload: dict[str, float] = field(default_factory=dict)  # denials on the pods the inventory lists
    unlisted: float = 0.0  # denials on pods the inventory does not list (replaced, or no pods read)
    total: float = 0.0


@dataclass(slots=True)
class RbacEvidence:
    """The RBAC denials of a run, indexed by destination workload where the inventory names the pods."""

    failed: str = ""
    collected: bool = False
    namespaces: dict[str, _Namespace] = field(default_factory=dict)
    workloads_with_pods: set[tuple[str, str]] = field(default_factory=set)

    @classmethod
    def of(cls, traffic: Traffic, inventory: Inventory) -> RbacEvidence:
        out = cls(failed=traffic.rbac_failed, collected=traffic.rbac_denials is not None)
        out.workloads_with_pods = set(inventory.pod_workloads.values())
        namespaces: dict[str, _Namespace] = defaultdict(_Namespace)
        for (namespace, pod), denied in (traffic.rbac_denials or {}).items():
            here = namespaces[namespace]
            here.total += denied
            owner = inventory.pod_workloads.get((namespace, pod))
            if owner is None:
                here.unlisted += denied
            else:
                here.by_workload[owner[1]] = here.by_workload.get(owner[1], 0.0) + denied
        out.namespaces = dict(namespaces)
        return out

    def judge(self, namespace: str, workload: str, forbidden: float) -> Judgement:
        """Whose were the `forbidden` plaintext 403s of `namespace/workload`."""
        if self.failed:
            return Judgement(UNCONFIRMED, f"the RBAC-denials query failed ({self.failed})")
        if not self.collected:
            return Judgement(UNCONFIRMED, "Envoy's RBAC denials were not collected")
        here = self.namespaces.get(namespace)
        if (namespace, workload) in self.workloads_with_pods:
            return _by_pods(here, workload, forbidden)
        return _by_namespace(here, namespace)


def _count(value: float) -> str:
    return f"{value:,.0f}"


def _by_pods(here: _Namespace | None, workload: str, forbidden: float) -> Judgement:
    if here is None or workload not in here.by_workload:
        return Judgement(UNCONFIRMED, "no Envoy RBAC series for its pods (no policy filter there, or not scraped)")
    denied = here.by_workload[workload]
    if denied == 0 and here.unlisted > 0:
        return Judgement(
            UNCONFIRMED,
            f"its pods' RBAC filters denied nothing, but pods the inventory does not list (replaced in the "
            f"window?) in its namespace denied {_count(here.unlisted)}",
        )
    if denied == 0:
        return Judgement(NOT_PROXY, "its pods' RBAC filters denied no request in the window")
    if denied < forbidden * ENOUGH:
        return Judgement(
            UNCONFIRMED,
            f"its pods' RBAC filters denied {_count(denied)} requests, fewer than its {_count(forbidden)} "
            "plaintext 403s: some were the application's",
        )
    return Judgement(
        PROXY, f"its pods' RBAC filters denied {_count(denied)} requests for {_count(forbidden)} plaintext 403s"
    )


def _by_namespace(here: _Namespace | None, namespace: str) -> Judgement:
    """Without the workload's pods (an inventory read from manifests) only a namespace that denied
    nothing at all says something: none of these 403s was an RBAC filter's."""
    if here is None:
        return Judgement(UNCONFIRMED, f"no Envoy RBAC series in namespace {namespace}")
    if here.total == 0:
        return Judgement(
            NOT_PROXY,
            f"namespace-level evidence (the inventory lists no pods of it): no RBAC filter in namespace "
            f"{namespace} denied a request in the window",
        )
    return Judgement(
        UNCONFIRMED,
        f"RBAC filters in namespace {namespace} denied {_count(here.total)} requests, but the inventory lists "
        "no pods of this workload to tie them to it",
    )
