"""Reading Kubernetes objects: PeerAuthentication manifests, dataplane detection and workload names.

Table-driven, one named row per case. References: the PeerAuthentication CRD (enum modes, port keys
1..65535), istio's sidecar injector (webhook selectors and injectRequired), istio-cni's ambient
enablement, and istio's workload naming (pkg/kube/util.go GetDeployMetaFromPod).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml

from analyzer.collect.manifests import (
    EPOCH,
    ObjectError,
    build_inventory,
    dataplane,
    peer_authentication,
    workload_identity,
)
from analyzer.collect.policy_files import load_inventory
from analyzer.collect.schemas import Metadata, PodMetadata, PodSpec
from analyzer.model.inventory import Dataplane, Namespace
from analyzer.model.policy import Mode
from analyzer.sample import catalogue
from analyzer.sample.mesh import SampleMesh
from tests.support.e2e import Report, run_report, short_history

P, S, D, U = Mode.PERMISSIVE, Mode.STRICT, Mode.DISABLE, Mode.UNSET


def pa_obj(spec: Any, *, api: str = "security.istio.io/v1", **meta: Any) -> dict:
    metadata = {"name": "pa", "namespace": "shop", **meta}
    return {"apiVersion": api, "kind": "PeerAuthentication", "metadata": metadata, "spec": spec}


# -- PeerAuthentication ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("obj", "selector", "mode", "ports"),
    [
        pytest.param(pa_obj({"mtls": {"mode": "STRICT"}}), {}, S, {}, id="namespace-wide-strict"),
        pytest.param(pa_obj({}), {}, U, {}, id="empty-spec-is-unset"),
        pytest.param(pa_obj(None), {}, U, {}, id="null-spec-is-unset"),
        pytest.param(pa_obj({"selector": {"matchLabels": {"app": "web"}}}), {"app": "web"}, U, {}, id="missing-mtls"),
        pytest.param(pa_obj({"mtls": {}}), {}, U, {}, id="empty-mtls-is-unset"),
        pytest.param(pa_obj({"mtls": {"mode": None}}), {}, U, {}, id="null-mode-is-unset"),
        pytest.param(pa_obj({"mtls": {"mode": "UNSET"}}), {}, U, {}, id="explicit-unset"),
        pytest.param(pa_obj({"mtls": {"mode": "DISABLE"}}), {}, D, {}, id="disable"),
        pytest.param(pa_obj({"mtls": {"mode": "PERMISSIVE"}}), {}, P, {}, id="permissive"),
        pytest.param(pa_obj({"selector": {}, "mtls": {"mode": "STRICT"}}), {}, S, {}, id="empty-selector"),
        pytest.param(pa_obj({"selector": {"matchLabels": {}}}), {}, U, {}, id="empty-matchlabels"),
        pytest.param(
            pa_obj({"selector": {"matchLabels": {"app": "web", "version": 2}}}),
            {"app": "web", "version": "2"},
            U,
            {},
            id="label-values-as-strings",
        ),
        pytest.param(
            pa_obj(
                {
                    "selector": {"matchLabels": {"app": "web"}},
                    "mtls": {"mode": "STRICT"},
                    "portLevelMtls": {"8080": {"mode": "PERMISSIVE"}, "9090": {"mode": "DISABLE"}},
                }
            ),
            {"app": "web"},
            S,
            {8080: P, 9090: D},
            id="port-keys-as-strings",
        ),
        pytest.param(
            pa_obj({"selector": {"matchLabels": {"app": "web"}}, "portLevelMtls": {8080: {"mode": "DISABLE"}}}),
            {"app": "web"},
            U,
            {8080: D},
            id="port-keys-as-yaml-ints",
        ),
        pytest.param(
            pa_obj({"selector": {"matchLabels": {"a": "b"}}, "portLevelMtls": {"1": {}, "65535": None}}),
            {"a": "b"},
            U,
            {1: U, 65535: U},
            id="port-bounds-and-port-without-mode-is-unset",
        ),
    ],
)
def test_peer_authentication_parses(obj: dict, selector: dict[str, str], mode: Mode, ports: dict[int, Mode]) -> None:
    got = peer_authentication(obj)
    assert (got.namespace, got.name) == ("shop", "pa")
    assert got.selector == selector
    assert got.mode is mode
    assert got.port_modes == ports
    assert all(type(p) is int for p in got.port_modes)
    assert not got.hypothetical


@pytest.mark.parametrize(
    ("meta", "namespace", "created"),
    [
        pytest.param(
            {"creationTimestamp": "2026-03-01T10:20:30Z"},
            "shop",
            datetime(2026, 3, 1, 10, 20, 30, tzinfo=UTC),
            id="rfc3339-z",
        ),
        pytest.param({}, "shop", EPOCH, id="no-timestamp-is-epoch"),
        pytest.param({"namespace": None}, "fallback", EPOCH, id="no-namespace-uses-default"),
    ],
)
def test_peer_authentication_metadata(meta: dict, namespace: str, created: datetime) -> None:
    got = peer_authentication(pa_obj({}, **meta), default_namespace="fallback")
    assert got.namespace == namespace
    assert got.created == created
    assert got.created.tzinfo is not None


@pytest.mark.parametrize(
    ("obj", "message"),
    [
        pytest.param(pa_obj({"mtls": {"mode": "strict"}}), "strict", id="lowercase-mode"),
        pytest.param(pa_obj({"mtls": {"mode": "Permissive"}}), "Permissive", id="mixed-case-mode"),
        pytest.param(pa_obj({"mtls": {"mode": "MUTUAL"}}), "MUTUAL", id="unknown-mode"),
        pytest.param(pa_obj({"mtls": {"mode": ""}}), "mode", id="empty-string-mode"),
        pytest.param(pa_obj({"mtls": {"mode": 3}}), "mode", id="numeric-mode"),
        pytest.param(pa_obj({"mtls": "STRICT"}), None, id="mtls-not-a-map"),
        pytest.param(
            pa_obj({"selector": {"matchLabels": {"a": "b"}}, "portLevelMtls": {"8080": {"mode": "disable"}}}),
            "disable",
            id="lowercase-port-mode",
        ),
        pytest.param(pa_obj({"portLevelMtls": {"0": {"mode": "STRICT"}}}), "1..65535", id="port-zero"),
        pytest.param(pa_obj({"portLevelMtls": {"65536": {"mode": "STRICT"}}}), "1..65535", id="port-too-big"),
        pytest.param(pa_obj({"portLevelMtls": {"-1": {"mode": "STRICT"}}}), "1..65535", id="negative-port"),
        pytest.param(pa_obj({"portLevelMtls": {"http": {"mode": "STRICT"}}}), "http", id="port-name-not-number"),
        pytest.param(pa_obj({"portLevelMtls": {80.5: {"mode": "STRICT"}}}), "80.5", id="fractional-port"),
        pytest.param(pa_obj({"portLevelMtls": ["8080"]}), None, id="port-level-not-a-map"),
        pytest.param(pa_obj({"selector": "app=web"}), None, id="selector-not-a-map"),
        pytest.param(pa_obj({"selector": {"matchLabels": ["app"]}}), "matchLabels", id="matchlabels-not-a-map"),
        pytest.param(pa_obj(["mtls"]), "spec", id="spec-not-a-map"),
        pytest.param(pa_obj({}, name=None), "metadata.name", id="no-name"),
        pytest.param(pa_obj({}, creationTimestamp="yesterday"), "creationTimestamp", id="bad-timestamp"),
    ],
)
def test_peer_authentication_rejects(obj: dict, message: str | None) -> None:
    with pytest.raises(ObjectError, match=message):
        peer_authentication(obj)


@pytest.mark.parametrize(
    ("api", "read"),
    [
        pytest.param("security.istio.io/v1", True, id="v1"),
        pytest.param("security.istio.io/v1beta1", True, id="v1beta1"),
        pytest.param("authentication.istio.io/v1alpha1", False, id="other-group-skipped"),
    ],
)
def test_build_inventory_reads_peer_authentication_versions(api: str, read: bool) -> None:
    inv = build_inventory([(pa_obj({"mtls": {"mode": "STRICT"}}, api=api), "f.yaml")])
    assert [(p.ref, p.mode) for p in inv.peer_authentications] == ([("shop/pa", S)] if read else [])
    assert inv.problems == []


def test_build_inventory_skips_a_bad_policy_and_keeps_going() -> None:
    bad = pa_obj({"mtls": {"mode": "strict"}}, name="bad")
    bad_selector = pa_obj({"selector": "app=web"}, name="bad-selector")
    good = pa_obj({"mtls": {"mode": "STRICT"}}, name="good")
    inv = build_inventory([(bad, "a.yaml"), (bad_selector, "b.yaml"), (good, "c.yaml")])
    assert [p.ref for p in inv.peer_authentications] == ["shop/good"]
    assert len(inv.problems) == 2
    assert inv.problems[0].startswith("a.yaml: skipped PeerAuthentication shop/bad:")
    assert "'strict'" in inv.problems[0]
    assert inv.problems[1].startswith("b.yaml: skipped PeerAuthentication shop/bad-selector:")


# -- dataplane -------------------------------------------------------------------------------------------------------

SIDECAR_STATUS = {"sidecar.istio.io/status": '{"containers":["istio-proxy"]}'}
APP = {"name": "app", "image": "app:1"}
PROXY = {"name": "istio-proxy", "image": "proxyv2"}
ENABLED = {"istio-injection": "enabled"}
AMBIENT_NS = {"istio.io/dataplane-mode": "ambient"}


def dp(
    id_: str,
    want: Dataplane,
    *,
    labels: dict[str, str] | None = None,
    annotations: dict[str, str] | None = None,
    spec: dict | None = None,
    ns: dict[str, str] | None = None,
    running: bool = False,
):
    """ns=None means the namespace object is unknown."""
    meta = {"labels": labels or {}, "annotations": annotations or {}}
    pod_spec = spec if spec is not None else {"containers": [APP]}
    namespace = Namespace(name="shop", labels=ns) if ns is not None else None
    return pytest.param(meta, pod_spec, namespace, running, want, id=id_)


DATAPLANE_CASES = [
    # What a running pod has.
    dp("running-status-annotation", Dataplane.SIDECAR, annotations=SIDECAR_STATUS, ns={}, running=True),
    dp("running-istio-proxy-container", Dataplane.SIDECAR, spec={"containers": [APP, PROXY]}, ns={}, running=True),
    dp(
        "running-native-sidecar-init-container",
        Dataplane.SIDECAR,
        spec={"initContainers": [{**PROXY, "restartPolicy": "Always"}], "containers": [APP]},
        ns={},
        running=True,
    ),
    dp("running-without-proxy-in-injected-namespace", Dataplane.NONE, ns=ENABLED, running=True),
    dp(
        "running-ambient-annotation",
        Dataplane.AMBIENT,
        annotations={"ambient.istio.io/redirection": "enabled"},
        ns={},
        running=True,
    ),
    dp(
        "running-ambient-label-without-annotation",
        Dataplane.NONE,
        labels={"istio.io/dataplane-mode": "ambient"},
        ns=AMBIENT_NS,
        running=True,
    ),
    dp(
        "running-sidecar-wins-over-ambient-annotation",
        Dataplane.SIDECAR,
        annotations={**SIDECAR_STATUS, "ambient.istio.io/redirection": "enabled"},
        ns={},
        running=True,
    ),
    # What the injector would do with a template.
    dp("template-plain-namespace", Dataplane.NONE, ns={}),
    dp("template-unknown-namespace", Dataplane.NONE, ns=None),
    dp("template-namespace-injection-enabled", Dataplane.SIDECAR, ns=ENABLED),
    dp(
        "template-namespace-enabled-pod-label-false",
        Dataplane.NONE,
        labels={"sidecar.istio.io/inject": "false"},
        ns=ENABLED,
    ),
    dp(
        "template-namespace-enabled-pod-label-false-any-case",
        Dataplane.NONE,
        labels={"sidecar.istio.io/inject": "False"},
        ns=ENABLED,
    ),
    dp(
        "template-namespace-enabled-pod-annotation-false",
        Dataplane.NONE,
        annotations={"sidecar.istio.io/inject": "false"},
        ns=ENABLED,
    ),
    dp(
        "template-pod-label-wins-over-annotation",
        Dataplane.SIDECAR,
        labels={"sidecar.istio.io/inject": "true"},
        annotations={"sidecar.istio.io/inject": "false"},
        ns=ENABLED,
    ),
    dp(
        "template-namespace-enabled-pod-label-yes",
        Dataplane.SIDECAR,
        labels={"sidecar.istio.io/inject": "yes"},
        ns=ENABLED,
    ),
    dp("template-namespace-disabled", Dataplane.NONE, ns={"istio-injection": "disabled"}),
    dp(
        "template-namespace-disabled-beats-pod-true",
        Dataplane.NONE,
        labels={"sidecar.istio.io/inject": "true"},
        ns={"istio-injection": "disabled"},
    ),
    dp("template-pod-label-true-plain-namespace", Dataplane.SIDECAR, labels={"sidecar.istio.io/inject": "true"}, ns={}),
    dp(
        "template-pod-label-true-unknown-namespace",
        Dataplane.SIDECAR,
        labels={"sidecar.istio.io/inject": "true"},
        ns=None,
    ),
    dp(
        "template-pod-annotation-true-only-is-not-selected-by-any-webhook",
        Dataplane.NONE,
        annotations={"sidecar.istio.io/inject": "true"},
        ns={},
    ),
    dp("template-namespace-revision", Dataplane.SIDECAR, ns={"istio.io/rev": "canary"}),
    dp(
        "template-namespace-revision-pod-false",
        Dataplane.NONE,
        labels={"sidecar.istio.io/inject": "false"},
        ns={"istio.io/rev": "canary"},
    ),
    dp(
        "template-namespace-revision-but-injection-disabled",
        Dataplane.NONE,
        ns={"istio.io/rev": "canary", "istio-injection": "disabled"},
    ),
    dp("template-pod-revision-label-plain-namespace", Dataplane.SIDECAR, labels={"istio.io/rev": "canary"}, ns={}),
    dp(
        "template-pod-revision-label-and-inject-false",
        Dataplane.NONE,
        labels={"istio.io/rev": "canary", "sidecar.istio.io/inject": "false"},
        ns={},
    ),
    dp(
        "template-pod-revision-label-namespace-disabled",
        Dataplane.NONE,
        labels={"istio.io/rev": "canary"},
        ns={"istio-injection": "disabled"},
    ),
    dp(
        "template-host-network-not-injected",
        Dataplane.NONE,
        spec={"hostNetwork": True, "containers": [APP]},
        ns=ENABLED,
    ),
    # Ambient templates.
    dp("template-namespace-ambient", Dataplane.AMBIENT, ns=AMBIENT_NS),
    dp("template-pod-ambient-label", Dataplane.AMBIENT, labels={"istio.io/dataplane-mode": "ambient"}, ns={}),
    dp(
        "template-namespace-ambient-pod-opts-out",
        Dataplane.NONE,
        labels={"istio.io/dataplane-mode": "none"},
        ns=AMBIENT_NS,
    ),
    dp("template-ambient-host-network", Dataplane.NONE, spec={"hostNetwork": True, "containers": [APP]}, ns=AMBIENT_NS),
    dp(
        "template-sidecar-injection-wins-over-ambient-namespace",
        Dataplane.SIDECAR,
        labels={"sidecar.istio.io/inject": "true"},
        ns=AMBIENT_NS,
    ),
    dp(
        "template-ambient-annotation", Dataplane.AMBIENT, annotations={"ambient.istio.io/redirection": "enabled"}, ns={}
    ),
    # Istio's own proxies run a container named istio-proxy but are not governed by PeerAuthentication.
    dp(
        "running-helm-ingress-gateway",
        Dataplane.GATEWAY,
        labels={"istio": "ingressgateway", "app": "istio-ingressgateway"},
        annotations={**SIDECAR_STATUS, "inject.istio.io/templates": "gateway"},
        spec={"containers": [PROXY]},
        ns={},
        running=True,
    ),
    dp(
        "running-gateway-api-gateway",
        Dataplane.GATEWAY,
        labels={"gateway.networking.k8s.io/gateway-name": "edge"},
        spec={"containers": [PROXY]},
        ns={},
        running=True,
    ),
    dp(
        "running-waypoint",
        Dataplane.GATEWAY,
        labels={"gateway.istio.io/managed": "istio.io-mesh-controller"},
        spec={"containers": [PROXY]},
        ns=AMBIENT_NS,
        running=True,
    ),
    dp(
        "running-ztunnel",
        Dataplane.GATEWAY,
        labels={"app": "ztunnel"},
        spec={"containers": [PROXY]},
        ns={},
        running=True,
    ),
]


@pytest.mark.parametrize(("pod_meta", "pod_spec", "ns", "running", "want"), DATAPLANE_CASES)
def test_dataplane(pod_meta: dict, pod_spec: dict, ns: Namespace | None, running: bool, want: Dataplane) -> None:
    meta, spec = PodMetadata.model_validate(pod_meta), PodSpec.model_validate(pod_spec)
    assert dataplane(meta, spec, ns, running_pod=running) is want


# -- workload identity -----------------------------------------------------------------------------------------------


def owned(kind: str, name: str, owner_kind: str, owner_name: str, *, controller: bool = True, **labels: str) -> dict:
    ref = {"apiVersion": "v1", "kind": owner_kind, "name": owner_name, "controller": controller}
    return {"kind": kind, "metadata": {"name": name, "labels": labels, "ownerReferences": [ref]}}


def bare(kind: str, name: str) -> dict:
    return {"kind": kind, "metadata": {"name": name}}


@pytest.mark.parametrize(
    ("obj", "owners", "want"),
    [
        pytest.param(
            owned("Pod", "web-5d4f8c7b9-x2x7q", "ReplicaSet", "web-5d4f8c7b9", **{"pod-template-hash": "5d4f8c7b9"}),
            None,
            ("Deployment", "web"),
            id="pod-of-replicaset-via-pod-template-hash",
        ),
        pytest.param(
            owned("Pod", "web-5d4f8c7b9-x2x7q", "ReplicaSet", "web-5d4f8c7b9"),
            None,
            ("ReplicaSet", "web-5d4f8c7b9"),
            id="pod-of-replicaset-without-hash-label",
        ),
        pytest.param(
            owned("Pod", "web-abc-x2x7q", "ReplicaSet", "web-abc", **{"pod-template-hash": "zzz"}),
            None,
            ("ReplicaSet", "web-abc"),
            id="pod-of-replicaset-hash-not-a-suffix",
        ),
        pytest.param(
            owned("Pod", "web-abc-x2x7q", "ReplicaSet", "web-abc"),
            {("ReplicaSet", "web-abc"): owned("ReplicaSet", "web-abc", "Deployment", "web-frontend")},
            ("Deployment", "web-frontend"),
            id="pod-of-known-replicaset-follows-its-owner",
        ),
        pytest.param(
            owned("ReplicaSet", "web-5d4f8c7b9", "Deployment", "web"),
            None,
            ("Deployment", "web"),
            id="replicaset-of-deployment",
        ),
        pytest.param(bare("ReplicaSet", "standalone"), None, ("ReplicaSet", "standalone"), id="bare-replicaset"),
        pytest.param(
            owned("Pod", "backup-28000000-abcde", "Job", "backup-28000000"),
            None,
            ("CronJob", "backup"),
            id="pod-of-job-8-digit-suffix-is-cronjob",
        ),
        pytest.param(
            owned("Pod", "backup-2800000000-abcde", "Job", "backup-2800000000"),
            None,
            ("CronJob", "backup"),
            id="pod-of-job-10-digit-suffix-is-cronjob",
        ),
        pytest.param(
            owned("Pod", "x", "Job", "backup-2800000"), None, ("Job", "backup-2800000"), id="pod-of-job-7-digits"
        ),
        pytest.param(
            owned("Pod", "x", "Job", "backup-28000000000"),
            None,
            ("Job", "backup-28000000000"),
            id="pod-of-job-11-digits",
        ),
        pytest.param(
            owned("Pod", "x", "Job", "db-migrate-v2-28000000"),
            None,
            ("CronJob", "db-migrate-v2"),
            id="pod-of-job-dashes-in-cronjob-name",
        ),
        pytest.param(owned("Pod", "migrate-abcde", "Job", "migrate"), None, ("Job", "migrate"), id="pod-of-plain-job"),
        pytest.param(
            owned("Job", "nightly-28000000", "CronJob", "nightly"),
            None,
            ("CronJob", "nightly"),
            id="job-owned-by-cronjob",
        ),
        pytest.param(bare("Job", "report-28000000"), None, ("CronJob", "report"), id="job-digit-suffix-without-owner"),
        pytest.param(bare("Job", "report"), None, ("Job", "report"), id="bare-job"),
        pytest.param(owned("Pod", "db-0", "StatefulSet", "db"), None, ("StatefulSet", "db"), id="pod-of-statefulset"),
        pytest.param(
            owned("Pod", "node-agent-x", "DaemonSet", "node-agent"), None, ("DaemonSet", "node-agent"), id="ds"
        ),
        pytest.param(bare("Pod", "debug"), None, ("Pod", "debug"), id="bare-pod"),
        pytest.param(
            owned("Pod", "debug", "ReplicaSet", "web-abc", controller=False),
            None,
            ("Pod", "debug"),
            id="pod-with-non-controller-owner-is-bare",
        ),
        pytest.param(bare("Deployment", "web"), None, ("Deployment", "web"), id="deployment"),
        pytest.param(bare("CronJob", "nightly"), None, ("CronJob", "nightly"), id="cronjob"),
    ],
)
def test_workload_identity(obj: dict, owners: dict | None, want: tuple[str, str]) -> None:
    typed = {("", name): Metadata.model_validate(o["metadata"]) for (_, name), o in (owners or {}).items()}
    assert workload_identity(obj["kind"], Metadata.model_validate(obj["metadata"]), typed) == want


def test_build_inventory_names_pods_after_their_deployment_with_namespace_injection() -> None:
    pod = owned("Pod", "web-5d4f8c7b9-x2x7q", "ReplicaSet", "web-5d4f8c7b9", **{"pod-template-hash": "5d4f8c7b9"})
    pod["metadata"]["namespace"] = "shop"
    pod["metadata"]["annotations"] = SIDECAR_STATUS
    pod["spec"] = {
        "containers": [{**APP, "ports": [{"containerPort": 8080}]}, {**PROXY, "ports": [{"containerPort": 15090}]}]
    }
    template = {
        "kind": "Deployment",
        "metadata": {"name": "api", "namespace": "shop"},
        "spec": {"template": {"metadata": {"labels": {"app": "api"}}, "spec": {"containers": [APP]}}},
    }
    namespace = {"kind": "Namespace", "metadata": {"name": "shop", "labels": {"istio.io/rev": "stable"}}}
    # The namespace comes last: workloads are read after every namespace.
    inv = build_inventory([(pod, "pods"), (template, "apps"), (namespace, "ns")])
    assert inv.problems == []
    web = inv.workload("shop", "web")
    assert web is not None and (web.kind, web.dataplane, web.ports) == ("Deployment", Dataplane.SIDECAR, (8080,))
    api = inv.workload("shop", "api")
    assert api is not None and (api.kind, api.dataplane, api.labels) == (
        "Deployment",
        Dataplane.SIDECAR,
        {"app": "api"},
    )


# -- malformed objects: one warning naming the object, the object skipped, the run goes on ---------------------------


def dr_obj(spec: Any, **meta: Any) -> dict:
    metadata = {"name": "dr", "namespace": "shop", **meta}
    return {"apiVersion": "networking.istio.io/v1", "kind": "DestinationRule", "metadata": metadata, "spec": spec}


def deployment(pod_spec: Any, *, labels: Any = None, name: str = "web") -> dict:
    template = {"metadata": {"labels": labels if labels is not None else {"app": name}}, "spec": pod_spec}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "namespace": "shop"},
        "spec": {"template": template},
    }


GOOD_DR = dr_obj({"host": "web", "trafficPolicy": {"tls": {"mode": "DISABLE"}}}, name="good")
GOOD_WORKLOAD = deployment({"containers": [{"name": "app", "ports": [{"containerPort": 8080}]}]}, name="good")


@pytest.mark.parametrize(
    ("obj", "named", "field"),
    [
        pytest.param(
            dr_obj({"host": "web", "trafficPolicy": {"portLevelSettings": [1]}}),
            "DestinationRule shop/dr",
            "portLevelSettings.0: expected a map",
            id="dr-port-level-settings-not-maps",
        ),
        pytest.param(dr_obj([{"host": "web"}]), "DestinationRule shop/dr", "spec: expected a map", id="dr-spec-a-list"),
        pytest.param(
            dr_obj({"host": "web", "trafficPolicy": {"portLevelSettings": [{"port": {"number": "http"}}]}}),
            "DestinationRule shop/dr",
            "port.number: expected a whole number, got 'http'",
            id="dr-port-number-a-name",
        ),
        pytest.param(
            dr_obj({"host": "web", "trafficPolicy": {"tls": {"mode": "disable"}}}),
            "DestinationRule shop/dr",
            "tls.mode: expected 'DISABLE', 'SIMPLE', 'MUTUAL' or 'ISTIO_MUTUAL'",
            id="dr-lowercase-tls-mode",
        ),
        pytest.param(
            dr_obj({"trafficPolicy": {}}), "DestinationRule shop/dr", "spec.host: is missing", id="dr-no-host"
        ),
        pytest.param(
            dr_obj({"host": "web", "exportTo": "."}),
            "DestinationRule shop/dr",
            "exportTo: expected a list",
            id="dr-export-to-a-string",
        ),
        pytest.param(
            dr_obj({"host": ["web"]}), "DestinationRule shop/dr", "spec.host: expected a string", id="dr-host-list"
        ),
        pytest.param(
            pa_obj({"mtls": {"mode": "Strict"}}),
            "PeerAuthentication shop/pa",
            "spec.mtls.mode: expected 'UNSET', 'DISABLE', 'PERMISSIVE' or 'STRICT'",
            id="pa-mode-Strict",
        ),
        pytest.param(
            pa_obj({"portLevelMtls": {"http": {"mode": "STRICT"}}}),
            "PeerAuthentication shop/pa",
            "portLevelMtls.http: expected a whole number",
            id="pa-port-key-a-name",
        ),
        pytest.param(
            pa_obj({"portLevelMtls": {"80": ["STRICT"]}}),
            "PeerAuthentication shop/pa",
            "portLevelMtls.80: expected a map",
            id="pa-port-setting-a-list",
        ),
        pytest.param(
            {"kind": "Namespace", "metadata": {"name": "shop", "labels": ["istio-injection"]}},
            "Namespace shop",
            "metadata.labels: expected a map",
            id="namespace-labels-a-list",
        ),
        pytest.param(
            {"kind": "Namespace", "metadata": "shop"},
            "Namespace ?",
            "metadata: expected a map",
            id="namespace-metadata-a-string",
        ),
        pytest.param(
            deployment({"containers": {"name": "app"}}),
            "Deployment shop/web",
            "spec.template.spec.containers: expected a list",
            id="containers-a-map",
        ),
        pytest.param(
            deployment({"containers": [{"name": "app", "ports": [{"containerPort": "http"}]}]}),
            "Deployment shop/web",
            "containerPort: expected a whole number, got 'http'",
            id="container-port-a-name",
        ),
        pytest.param(
            deployment({"containers": [{"name": "app", "ports": [{"containerPort": True}]}]}),
            "Deployment shop/web",
            "containerPort: expected a port number",
            id="container-port-a-bool",
        ),
        pytest.param(
            deployment({}, labels={"app": {"nested": "map"}}),
            "Deployment shop/web",
            "spec.template.metadata.labels.app: expected a string",
            id="pod-label-a-map",
        ),
        pytest.param(deployment([]), "Deployment shop/web", "spec.template.spec: expected a map", id="pod-spec-a-list"),
        pytest.param(
            {"kind": "Pod", "metadata": {"name": "p", "namespace": "shop", "ownerReferences": {"kind": "Job"}}},
            "Pod shop/p",
            "metadata.ownerReferences: expected a list",
            id="owner-references-a-map",
        ),
        pytest.param(
            {"kind": "CronJob", "metadata": {"name": "c", "namespace": "shop"}, "spec": {"jobTemplate": 3}},
            "CronJob shop/c",
            "spec.jobTemplate: expected a map",
            id="cronjob-job-template-a-number",
        ),
        pytest.param(
            {"kind": "Pod", "metadata": {"name": "p"}, "spec": {"hostNetwork": {"on": 1}}},
            "Pod p",
            "spec.hostNetwork: expected true or false",
            id="host-network-a-map",
        ),
        pytest.param({"kind": ["Pod"], "metadata": {"name": "p"}}, "object p", "kind is missing", id="kind-a-list"),
    ],
)
def test_a_malformed_object_is_one_warning_naming_it_and_the_run_goes_on(obj: dict, named: str, field: str) -> None:
    inv = build_inventory([(GOOD_DR, "good.yaml"), (obj, "bad.yaml (document 2)"), (GOOD_WORKLOAD, "good.yaml")])
    assert len(inv.problems) == 1, inv.problems
    assert inv.problems[0].startswith(f"bad.yaml (document 2): skipped {named}: ")
    assert field in inv.problems[0]
    assert [r.ref for r in inv.destination_rules] == ["shop/good"]
    assert list(inv.workloads) == [("shop", "good")]


def test_a_message_never_embeds_a_huge_or_hostile_value() -> None:
    huge = "\u202e=cmd|' /C calc'!A0" + "x" * 1_000_000
    objects = [
        pa_obj({"mtls": {"mode": huge}}, name=huge),
        pa_obj({"portLevelMtls": {huge: {"mode": "STRICT"}}}),
        dr_obj({"host": "web", "trafficPolicy": {"tls": {"mode": [huge] * 1000}}}),
    ]
    inv = build_inventory([(o, "f.yaml") for o in objects])
    assert len(inv.problems) == 3
    for problem in inv.problems:
        assert len(problem) < 600, problem[:200]
        assert "\u202e" not in problem and "x" * 260 not in problem  # names are bounded at 253


def test_match_expressions_in_a_peer_authentication_warn_and_the_policy_still_counts() -> None:
    obj = pa_obj(
        {
            "selector": {"matchExpressions": [{"key": "app", "operator": "In", "values": ["web"]}]},
            "mtls": {"mode": "STRICT"},
        }
    )
    inv = build_inventory([(obj, "f.yaml")])
    assert inv.problems == []
    [warning] = inv.warnings
    assert warning.startswith("f.yaml: PeerAuthentication shop/pa: selector.matchExpressions is ignored")
    assert "whole namespace" in warning
    # Istio ignores the field: the policy governs the whole namespace, as the analysis reads it.
    assert [(p.selector, p.mode) for p in inv.peer_authentications] == [({}, S)]


@pytest.mark.parametrize(
    ("obj", "doubted"),
    [
        pytest.param(pa_obj({"mtls": {"mode": "Strict"}}), {"shop"}, id="namespace-policy"),
        pytest.param(pa_obj({"mtls": {"mode": "Strict"}}, namespace="istio-system"), {"istio-system"}, id="root"),
        pytest.param(pa_obj({"mtls": {"mode": "Strict"}}, namespace=None), {"default"}, id="no-namespace-is-default"),
        pytest.param(pa_obj({}, name=["x"]), {"shop"}, id="bad-name-known-namespace"),
        pytest.param(pa_obj({}, namespace={"a": 1}), {"istio-system"}, id="unreadable-namespace-doubts-the-mesh"),
    ],
)
def test_an_unreadable_peer_authentication_casts_doubt_on_its_scope(obj: dict, doubted: set[str]) -> None:
    others = [
        ({"kind": "Namespace", "metadata": {"name": "web"}}, "ns.yaml"),
        ({"kind": "Namespace", "metadata": {"name": "default"}}, "ns.yaml"),
        (GOOD_WORKLOAD, "apps.yaml"),
        (dr_obj({"host": "x"}, name="fine"), "dr.yaml"),
    ]
    inv = build_inventory([(obj, "pa.yaml"), *others])
    assert set(inv.policy_doubts) == doubted
    for reasons in inv.policy_doubts.values():
        assert len(reasons) == 1 and reasons[0].startswith("PeerAuthentication ") and "could not be read" in reasons[0]
    assert len(inv.problems) == 1


def test_a_readable_peer_authentication_or_a_bad_destination_rule_casts_no_doubt() -> None:
    inv = build_inventory([(pa_obj({"mtls": {"mode": "STRICT"}}), "a"), (dr_obj([1]), "b"), (deployment([]), "c")])
    assert inv.policy_doubts == {}
    assert len(inv.problems) == 2


# -- files: JSON first, YAML with duplicate keys and alias bombs ------------------------------------------------------

PA_YAML = """\
apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata: {name: good, namespace: shop}
spec: {mtls: {mode: STRICT}}
"""


def test_a_duplicate_yaml_key_warns_naming_the_file_line_and_key(tmp_path: Path) -> None:
    path = tmp_path / "dup.yaml"
    path.write_text(PA_YAML + "---\n" + PA_YAML.replace("good", "twice") + "spec: {mtls: {mode: DISABLE}}\n")
    inv = load_inventory(path)
    assert inv.problems == []
    [warning] = inv.warnings
    assert warning.startswith(f"{path} (document 2): line 10: duplicate key 'spec'")
    # The last value wins, as kubectl's decoder does; the warning says so.
    assert [(p.name, p.mode) for p in inv.peer_authentications] == [("good", S), ("twice", D)]


def test_a_yaml_alias_bomb_is_refused_with_a_warning_and_the_other_documents_are_read(tmp_path: Path) -> None:
    lines = ['a0: &a0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    lines += [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 9)}]" for i in range(1, 10)]
    path = tmp_path / "bomb.yaml"
    path.write_text(
        PA_YAML + "---\nkind: ConfigMap\n" + "\n".join(lines) + "\n---\n" + PA_YAML.replace("good", "after")
    )
    inv = load_inventory(path)
    [problem] = inv.problems
    assert problem.startswith(f"{path} (document 2): skipped: refused: its aliases expand to more than")
    assert [p.name for p in inv.peer_authentications] == ["good", "after"]
    # What it held is unknown: it may have been a PeerAuthentication, the whole mesh is in doubt.
    assert list(inv.policy_doubts) == ["istio-system"]


def test_a_self_referencing_yaml_document_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "loop.yaml"
    path.write_text("kind: ConfigMap\ndata: &a [*a]\n")
    [problem] = load_inventory(path).problems
    assert "refused: an alias refers to a node that contains it" in problem


def test_legitimate_yaml_aliases_are_read(tmp_path: Path) -> None:
    path = tmp_path / "aliases.yaml"
    path.write_text(PA_YAML.replace("spec: {mtls: {mode: STRICT}}", "spec: {mtls: &strict {mode: STRICT}, x: *strict}"))
    inv = load_inventory(path)
    assert (inv.problems, [p.mode for p in inv.peer_authentications]) == ([], [S])


def test_a_kubectl_json_list_is_read(tmp_path: Path) -> None:
    items = [pa_obj({"mtls": {"mode": "STRICT"}}, name=f"pa-{i}") for i in range(3)] + [7]
    path = tmp_path / "list.json"
    path.write_text(json.dumps({"apiVersion": "v1", "kind": "List", "items": items}))
    inv = load_inventory(path)
    assert [p.name for p in inv.peer_authentications] == ["pa-0", "pa-1", "pa-2"]
    assert inv.problems == [f"{path} (document 1): skipped: item 4 is a int, not an object"]


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        pytest.param("- kind: PeerAuthentication\n", "the document is a list, not a Kubernetes object", id="list-doc"),
        pytest.param("just a string\n", "the document is a str", id="scalar-doc"),
        pytest.param('{"kind": "PeerAuthenticationList", "items": {"a": 1}}', "items is not a list", id="items-map"),
    ],
)
def test_a_document_that_is_no_object_is_reported_and_doubts_the_whole_mesh(
    tmp_path: Path, text: str, reason: str
) -> None:
    path = tmp_path / "odd.yaml"
    path.write_text(text)
    (tmp_path / "pa.yaml").write_text(PA_YAML)
    inv = load_inventory(tmp_path)
    [problem] = inv.problems
    assert problem.startswith(f"{path} (document 1): skipped: ") and reason in problem
    assert list(inv.policy_doubts) == ["istio-system"]


# -- end to end: files -> report -------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def demo_served(
    prometheus_factory: Callable[[SampleMesh], str], tmp_path_factory: pytest.TempPathFactory
) -> tuple[str, list[dict]]:
    mesh = short_history(catalogue.demo())
    return prometheus_factory(mesh), mesh.manifests()


def _report_with(served: tuple[str, list[dict]], folder: Path, extra: dict) -> Report:
    url, manifests = served
    folder.mkdir(parents=True, exist_ok=True)
    policies = folder / "policies.yaml"
    policies.write_text(yaml.safe_dump_all([*manifests, extra], sort_keys=False), encoding="utf-8")
    return run_report(None, url, policies, folder / "reports")


def test_an_unreadable_policy_makes_ready_unknown_in_its_namespace_only(
    demo_served: tuple[str, list[dict]], tmp_path: Path
) -> None:
    before = _report_with(demo_served, tmp_path / "before", {"kind": "ConfigMap", "metadata": {"name": "x"}})
    assert (before.verdict("edge/ratelimit"), before.verdict("edge/gateway-api")) == ("READY", "BLOCKED")
    assert before.verdict("shop/cart") == "READY"
    broken = pa_obj({"mtls": {"mode": "Strict"}}, name="edge-default", namespace="edge")
    after = _report_with(demo_served, tmp_path / "after", broken)
    assert after.code == 2
    assert after.verdict("edge/ratelimit") == "UNKNOWN"
    assert "PeerAuthentication edge/edge-default could not be read" in after.workloads["edge/ratelimit"]["reasons"]
    assert after.verdict("edge/gateway-api") == "BLOCKED"  # plaintext arriving still proves it is not STRICT
    assert after.verdict("shop/cart") == "READY"  # another namespace is untouched
    assert after.summary["namespaces"]["shop"] == "READY"
    [warning] = [w for w in after.summary["warnings"] if "edge-default" in w]
    assert "policies.yaml (document" in warning and "spec.mtls.mode" in warning


def test_an_unreadable_root_namespace_policy_makes_every_ready_unknown(
    demo_served: tuple[str, list[dict]], tmp_path: Path
) -> None:
    broken = pa_obj({"portLevelMtls": {"http": {"mode": "STRICT"}}}, name="mesh", namespace="istio-system")
    after = _report_with(demo_served, tmp_path, broken)
    verdicts = {ref: row["verdict"] for ref, row in after.workloads.items()}
    assert "READY" not in verdicts.values()
    assert (verdicts["shop/cart"], verdicts["edge/ratelimit"], verdicts["orders/web"]) == (
        "UNKNOWN",
        "UNKNOWN",
        "BLOCKED",
    )
