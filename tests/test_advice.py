"""Which DestinationRule turns TLS off for an edge, and what kind of client sent plaintext."""

from __future__ import annotations

from datetime import UTC, datetime
from types import SimpleNamespace

import pytest

from analyzer.analyse.advice import advise, client_kind, disabling_rule, qualified_host
from analyzer.model.inventory import Dataplane, Inventory, Workload
from analyzer.model.policy import DestinationRule

T0 = datetime(2026, 1, 1, tzinfo=UTC)
SERVICE = "billing.orders.svc.cluster.local"


def edge(source_ns: str = "shop", source: str = "web", protocol: str = "http") -> SimpleNamespace:
    return SimpleNamespace(
        source_namespace=source_ns,
        source_workload=source,
        destination_namespace="orders",
        destination_workload="billing",
        destination_service=SERVICE,
        protocol=protocol,
    )


def rule(namespace: str, host: str, tls: str | None = "DISABLE", **kw) -> DestinationRule:
    return DestinationRule(namespace=namespace, name=f"dr-{namespace}", created=T0, host=host, tls_mode=tls, **kw)


@pytest.mark.parametrize(
    ("host", "namespace", "expected"),
    [
        pytest.param("billing", "orders", SERVICE, id="short-name-is-relative-to-the-rule"),
        pytest.param("billing.orders", "shop", SERVICE, id="name-dot-namespace"),
        pytest.param(SERVICE, "shop", SERVICE, id="fully-qualified"),
        pytest.param("*.orders.svc.cluster.local", "shop", "*.orders.svc.cluster.local", id="wildcard-kept"),
    ],
)
def test_qualified_host(host: str, namespace: str, expected: str) -> None:
    assert qualified_host(host, namespace) == expected


@pytest.mark.parametrize(
    ("rules", "expected"),
    [
        pytest.param([rule("orders", "billing")], "orders/dr-orders", id="service-namespace-short-host"),
        pytest.param([rule("shop", "billing.orders")], "shop/dr-shop", id="client-namespace"),
        pytest.param([rule("istio-system", "*.orders.svc.cluster.local")], "istio-system/dr-istio-system", id="root"),
        pytest.param([rule("shop", "billing")], "", id="short-host-in-client-namespace-means-shop-billing"),
        pytest.param([rule("orders", "billing", tls="ISTIO_MUTUAL")], "", id="tls-on"),
        pytest.param([rule("payments", "*")], "", id="unrelated-namespace"),
        pytest.param([rule("orders", "billing", workload_selector={"app": "x"})], "", id="selector-rule-elsewhere"),
        pytest.param(
            [rule("orders", "billing", tls=None, port_tls_modes={8080: "DISABLE"})], "orders/dr-orders", id="port"
        ),
    ],
)
def test_disabling_rule(rules: list[DestinationRule], expected: str) -> None:
    assert disabling_rule(edge(), rules, "istio-system") == expected


def kind_of(row: SimpleNamespace, inventory: Inventory) -> str:
    return client_kind(row.source_namespace, row.source_workload, row.protocol, inventory)


def test_client_kind_and_advice() -> None:
    inventory = Inventory()
    inventory.add_workload(Workload("shop", "web", "Deployment", dataplane=Dataplane.SIDECAR))
    inventory.add_workload(Workload("batch", "etl", "CronJob", dataplane=Dataplane.NONE))
    inventory.destination_rules.append(rule("orders", "billing"))
    assert kind_of(edge(), inventory) == "meshed"
    assert "orders/dr-orders" in advise(edge(), "meshed", inventory, "istio-system")
    assert kind_of(edge("batch", "etl"), inventory) == "unmeshed"
    assert "batch/etl has no sidecar" in advise(edge("batch", "etl"), "unmeshed", inventory, "istio-system")
    assert kind_of(edge("unknown", "unknown"), inventory) == "unmeshed"  # HTTP without peer metadata
    assert kind_of(edge("unknown", "unknown", "tcp"), inventory) == "unknown"  # plaintext TCP: either
    assert kind_of(edge("elsewhere", "ghost"), inventory) == "unknown"
