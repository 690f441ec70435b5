"""Built-in sample meshes: Istio's mTLS migration walk-through, and a demo where every verdict appears."""

from __future__ import annotations

from datetime import timedelta

from analyzer.model.inventory import Dataplane
from analyzer.sample.mesh import (
    Flow,
    MeshWorkload,
    SampleMesh,
    destination_rule_disable,
    peer_authentication,
)

SIDECAR, AMBIENT, NONE = Dataplane.SIDECAR, Dataplane.AMBIENT, Dataplane.NONE
INJECT = {"istio-injection": "enabled"}


def walkthrough(policies: list[dict] | None = None, *, legacy_stopped: timedelta | None = None) -> SampleMesh:
    """https://istio.io/latest/docs/tasks/security/authentication/mtls-migration/ :
    `foo` and `bar` run httpbin and curl with sidecars; `legacy` runs curl without one.

    `legacy_stopped`: how long ago the legacy client stopped calling (None: still calling).
    """
    workloads = [
        MeshWorkload(
            ns, name, dataplane=SIDECAR if ns != "legacy" else NONE, ports=(8000,) if name == "httpbin" else ()
        )
        for ns, name in [("foo", "httpbin"), ("foo", "curl"), ("bar", "httpbin"), ("bar", "curl"), ("legacy", "curl")]
    ]
    flows = [
        Flow(f"{src}/curl", f"{dst}/httpbin", per_hour=120)
        for src in ("foo", "bar", "legacy")
        for dst in ("foo", "bar")
    ]
    flows = [
        Flow(f.source, f.destination, per_hour=f.per_hour, stop=legacy_stopped if f.source == "legacy/curl" else None)
        for f in flows
    ]
    return SampleMesh(
        workloads=workloads,
        flows=flows,
        namespace_labels={"foo": INJECT, "bar": INJECT, "legacy": {}, "istio-system": {}},
        policies=list(policies or []),
    )


def demo() -> SampleMesh:
    """The walk-through plus namespaces in which every verdict appears.

    `foo` carries the Telemetry override that adds the peer address (docs/attribution.md), so
    its unknown client is named for certain; `bar` has none, so there it is only a candidate."""
    mesh = walkthrough()
    mesh.peer_address_namespaces = frozenset({"foo"})
    w = mesh.workloads
    w += [
        # payments: namespace-wide STRICT -> ENFORCED; a newer duplicate namespace policy is ignored
        MeshWorkload("payments", "api"),
        MeshWorkload("payments", "ledger", ports=(9090,)),
        # shop: all mTLS -> READY, one idle service -> NO_TRAFFIC
        MeshWorkload("shop", "frontend", ports=(8080,)),
        MeshWorkload("shop", "cart", ports=(8080,)),
        MeshWorkload("shop", "catalog", ports=(8080,)),
        # orders: a meshed client whose DestinationRule disables TLS -> BLOCKED by a known source
        MeshWorkload("orders", "web", ports=(8080,)),
        MeshWorkload("orders", "billing", ports=(8080,)),
        # data: plaintext TCP from a sidecar-less nightly CronJob -> BLOCKED
        MeshWorkload("data", "postgres", kind="StatefulSet", ports=(5432,)),
        MeshWorkload("data", "etl", dataplane=NONE, kind="CronJob", ports=()),
        # legacy-db: a workload that opted out with DISABLE -> DISABLED
        MeshWorkload("legacy-db", "mysql", kind="StatefulSet", ports=(3306,)),
        # monitoring: no sidecar at all -> NOT_MESHED
        MeshWorkload("monitoring", "prometheus", dataplane=NONE, kind="StatefulSet", ports=(9090,)),
        # edge: ambient workloads; ztunnel reports plaintext as "unknown"
        MeshWorkload("edge", "gateway-api", dataplane=AMBIENT, ports=(8080,)),
        MeshWorkload("edge", "ratelimit", dataplane=AMBIENT, ports=(8081,)),
        MeshWorkload("ingress", "ingress-nginx", dataplane=NONE, ports=(80, 443)),
        # analytics: a Telemetry API override dropped connection_security_policy -> UNKNOWN
        MeshWorkload("analytics", "reports", ports=(8080,)),
    ]
    mesh.flows += [
        Flow("payments/api", "payments/ledger", protocol="grpc", per_hour=600),
        Flow("shop/frontend", "payments/api", per_hour=300),
        Flow("shop/frontend", "shop/cart", per_hour=900),
        Flow("orders/web", "orders/billing", per_hour=240, plaintext=True),
        Flow("ingress/ingress-nginx", "orders/web", per_hour=1200),
        Flow("orders/web", "data/postgres", protocol="tcp", per_hour=30),
        Flow(
            "data/etl",
            "data/postgres",
            protocol="tcp",
            per_hour=40,
            start=timedelta(days=3),
            stop=timedelta(days=3) - timedelta(minutes=20),
        ),
        Flow("orders/web", "legacy-db/mysql", protocol="tcp", per_hour=20),
        Flow("ingress/ingress-nginx", "edge/gateway-api", per_hour=600),
        Flow("edge/gateway-api", "edge/ratelimit", protocol="grpc", per_hour=600),
        Flow("shop/frontend", "analytics/reports", per_hour=60, drop_security_label=True),
    ]
    mesh.namespace_labels.update(
        {
            "payments": INJECT,
            "shop": INJECT,
            "orders": INJECT,
            "data": INJECT,
            "legacy-db": INJECT,
            "monitoring": {},
            "edge": {"istio.io/dataplane-mode": "ambient"},
            "ingress": {},
            "analytics": INJECT,
        }
    )
    mesh.policies += [
        peer_authentication("payments", "default", "STRICT"),
        peer_authentication("payments", "strict-again", "PERMISSIVE", created="2026-03-01T00:00:00Z"),
        peer_authentication("legacy-db", "mysql-disable", "DISABLE", selector={"app": "mysql"}),
        destination_rule_disable("orders", "billing-no-tls", "billing.orders.svc.cluster.local"),
    ]
    return mesh


MESHES = {"demo": demo, "walkthrough": walkthrough}


def synthetic(
    workloads: int = 500,
    edges: int = 4000,
    *,
    namespaces: int | None = None,
    plaintext_every: int = 25,
    unmeshed_every: int = 40,
    seed: int = 7,
) -> SampleMesh:
    """A large, reproducible mesh for scale tests and benchmarks.

    `workloads` spread over `namespaces` (default: one per 50); `edges` flows between random
    workloads; every `plaintext_every`-th flow is forced plaintext (a DestinationRule-style
    client), every `unmeshed_every`-th workload has no sidecar.
    """
    import random

    rng = random.Random(seed)
    namespaces = namespaces or max(1, workloads // 50)
    ns_names = [f"team-{i:03d}" for i in range(namespaces)]
    mesh_workloads = [
        MeshWorkload(
            ns_names[i % namespaces],
            f"svc-{i:05d}",
            dataplane=NONE if i % unmeshed_every == unmeshed_every - 1 else SIDECAR,
            ports=(8080,),
        )
        for i in range(workloads)
    ]
    meshed = [w for w in mesh_workloads if w.dataplane is not NONE]
    flows: list[Flow] = []
    seen: set[tuple[str, str, str]] = set()
    while len(flows) < edges:
        src = rng.choice(mesh_workloads)
        dst = rng.choice(meshed)
        protocol = rng.choice(("http", "http", "http", "grpc", "tcp"))
        key = (src.ref, dst.ref, protocol)
        if key in seen or src is dst:
            continue
        seen.add(key)
        plaintext = True if len(flows) % plaintext_every == 0 else None
        flows.append(Flow(src.ref, dst.ref, protocol=protocol, per_hour=rng.choice((6, 60, 600)), plaintext=plaintext))
    labels = {ns: dict(INJECT) for ns in ns_names}
    return SampleMesh(workloads=mesh_workloads, flows=flows, namespace_labels=labels)
