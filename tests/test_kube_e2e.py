"""`--policies-from kube` and `snapshot`: the real kubernetes client, a real kubeconfig, and an API
server on 127.0.0.1 serving the same mesh descriptions the Prometheus tests use."""

from __future__ import annotations

import csv
import hashlib
import json
import os
import subprocess
import sys
import time
from datetime import datetime, tzinfo
from pathlib import Path

import pytest
import yaml

from analyzer import cli, pipeline
from analyzer.collect.kube import SECURITY_CRDS_MISSING, read_cluster, read_objects, trim, write_snapshot
from analyzer.collect.policy_files import load_inventory
from analyzer.errors import UserError
from analyzer.model.inventory import Dataplane
from analyzer.sample import catalogue
from analyzer.sample.mesh import Flow, MeshWorkload, SampleMesh, peer_authentication
from tests.support.kube_api import FORBIDDEN, NOT_FOUND, slow

ROOT = Path(__file__).resolve().parent.parent
TABLES = ("workloads.csv", "namespaces.csv", "edges.csv")
CLOSED_PORT_URL = "http://127.0.0.1:1"  # Prometheus is never reached when the cluster read fails


def _cli(*args: str, timeout: float = 120) -> tuple[subprocess.CompletedProcess, float]:
    """The console entry point in its own process: real exit code, real stderr."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MTLS_READINESS_", "KUBE"))}
    started = time.monotonic()
    proc = subprocess.run(
        [sys.executable, "-m", "analyzer", *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout
    )
    return proc, time.monotonic() - started


def _error_line(proc: subprocess.CompletedProcess) -> str:
    lines = [line for line in proc.stderr.splitlines() if line.startswith("mtls-readiness: error:")]
    assert len(lines) == 1, proc.stderr
    return lines[0]


def _rows(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8", newline="") as stream:
        return list(csv.DictReader(stream))


def _tree_digest(folder: Path) -> dict[str, str]:
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


@pytest.fixture
def frozen_clock(monkeypatch: pytest.MonkeyPatch, now: datetime) -> datetime:
    """Runs seconds apart query Prometheus at the same instant, so their CSVs can be compared byte for byte."""

    class Frozen(datetime):
        @classmethod
        def now(cls, tz: tzinfo | None = None) -> datetime:
            return now

    monkeypatch.setattr(pipeline, "datetime", Frozen)
    return now


@pytest.fixture(scope="module")
def demo_prometheus(prometheus_factory) -> str:
    """One real Prometheus holding the demo mesh's series, shared by the full runs below."""
    return prometheus_factory(catalogue.demo())


def owner_chain_mesh() -> SampleMesh:
    """One workload of every controller shape Istio names in metrics, and every data plane."""
    return SampleMesh(
        workloads=[
            MeshWorkload("apps", "web", kind="Deployment", ports=(8080,)),
            MeshWorkload("apps", "db", kind="StatefulSet", ports=(5432,)),  # native sidecar
            MeshWorkload("apps", "node-agent", dataplane=Dataplane.NONE, kind="DaemonSet", ports=(9100,)),
            MeshWorkload("apps", "nightly-etl", dataplane=Dataplane.NONE, kind="CronJob", ports=()),
            MeshWorkload("apps", "migrate", kind="Job", ports=()),  # native sidecar lets it finish
            MeshWorkload("apps", "debug", dataplane=Dataplane.NONE, kind="Pod", ports=(8000,)),
            MeshWorkload("ambient", "api", dataplane=Dataplane.AMBIENT, ports=(8080,)),
        ],
        flows=[Flow("apps/web", "apps/db", protocol="tcp")],
        namespace_labels={"apps": {"istio-injection": "enabled"}, "ambient": {"istio.io/dataplane-mode": "ambient"}},
        policies=[peer_authentication("apps", "db-strict", "STRICT", selector={"app": "db"})],
    )


# -- trimming (pure) ---------------------------------------------------------------------------

_MANAGED = [{"manager": "kubectl", "operation": "Apply", "fieldsV1": {"f:spec": {}}}]
_LAST_APPLIED = {"kubectl.kubernetes.io/last-applied-configuration": '{"password": "hunter2"}'}


@pytest.mark.parametrize(
    ("obj", "expected"),
    [
        pytest.param(
            {
                "apiVersion": "v1",
                "kind": "Pod",
                "metadata": {
                    "name": "db-0",
                    "namespace": "data",
                    "uid": "u",
                    "labels": {"app": "db"},
                    "annotations": {
                        **_LAST_APPLIED,
                        "sidecar.istio.io/status": "{}",
                        "traffic.sidecar.istio.io/excludeInboundPorts": "9100",
                        "vault.hashicorp.com/agent-inject-template-db": "{{ secret }}",
                    },
                    "ownerReferences": [
                        {
                            "apiVersion": "apps/v1",
                            "kind": "StatefulSet",
                            "name": "db",
                            "uid": "x",
                            "controller": True,
                            "blockOwnerDeletion": True,
                        }
                    ],
                    "managedFields": _MANAGED,
                },
                "spec": {
                    "serviceAccountName": "db",
                    "hostNetwork": True,
                    "volumes": [{"name": "creds", "secret": {"secretName": "db"}}],
                    "initContainers": [
                        {
                            "name": "istio-proxy",
                            "image": "proxyv2",
                            "restartPolicy": "Always",
                            "env": [{"name": "TOKEN", "value": "hunter2"}],
                        }
                    ],
                    "containers": [
                        {
                            "name": "db",
                            "image": "postgres",
                            "command": ["postgres", "-p", "hunter2"],
                            "ports": [{"containerPort": 5432, "protocol": "TCP", "hostPort": 5432}],
                            "envFrom": [{"secretRef": {"name": "db"}}],
                        }
                    ],
                },
                "status": {"phase": "Running", "podIP": "10.0.0.7"},
            },
            {
                "apiVersion": "v1",
                "kind": "Pod",
                "metadata": {
                    "name": "db-0",
                    "namespace": "data",
                    "labels": {"app": "db"},
                    "annotations": {
                        "sidecar.istio.io/status": "{}",
                        "traffic.sidecar.istio.io/excludeInboundPorts": "9100",
                    },
                    "ownerReferences": [
                        {"apiVersion": "apps/v1", "kind": "StatefulSet", "name": "db", "controller": True}
                    ],
                },
                "spec": {
                    "serviceAccountName": "db",
                    "hostNetwork": True,
                    "initContainers": [{"name": "istio-proxy", "image": "proxyv2", "restartPolicy": "Always"}],
                    "containers": [
                        {"name": "db", "image": "postgres", "ports": [{"containerPort": 5432, "protocol": "TCP"}]}
                    ],
                },
                "status": {"phase": "Running", "podIP": "10.0.0.7"},  # attribution resolves addresses
            },
            id="pod-keeps-identity-sidecar-and-ports-only",
        ),
        pytest.param(
            {
                "apiVersion": "security.istio.io/v1",
                "kind": "PeerAuthentication",
                "metadata": {
                    "name": "default",
                    "namespace": "shop",
                    "creationTimestamp": "2026-01-01T00:00:00Z",
                    "annotations": _LAST_APPLIED,
                    "managedFields": _MANAGED,
                    "generation": 3,
                },
                "spec": {"mtls": {"mode": "STRICT"}},
                "status": {"validationMessages": []},
            },
            {
                "apiVersion": "security.istio.io/v1",
                "kind": "PeerAuthentication",
                "metadata": {"name": "default", "namespace": "shop", "creationTimestamp": "2026-01-01T00:00:00Z"},
                "spec": {"mtls": {"mode": "STRICT"}},
            },
            id="policy-keeps-spec-and-age-drops-last-applied",
        ),
        pytest.param(
            {
                "apiVersion": "apps/v1",
                "kind": "ReplicaSet",
                "metadata": {
                    "name": "web-5d8f",
                    "namespace": "shop",
                    "labels": {"pod-template-hash": "5d8f"},
                    "ownerReferences": [{"kind": "Deployment", "name": "web", "controller": True}],
                },
                "spec": {"template": {"spec": {"containers": [{"name": "web", "env": [{"name": "K", "value": "v"}]}]}}},
            },
            {
                "apiVersion": "apps/v1",
                "kind": "ReplicaSet",
                "metadata": {
                    "name": "web-5d8f",
                    "namespace": "shop",
                    "labels": {"pod-template-hash": "5d8f"},
                    "ownerReferences": [{"kind": "Deployment", "name": "web", "controller": True}],
                },
            },
            id="replicaset-is-only-an-owner-link",
        ),
        pytest.param(
            {
                "apiVersion": "v1",
                "kind": "Namespace",
                "metadata": {
                    "name": "shop",
                    "labels": {"istio.io/rev": "canary"},
                    "annotations": {"scheduler.alpha.kubernetes.io/node-selector": "pool=a"},
                },
                "spec": {"finalizers": ["kubernetes"]},
                "status": {"phase": "Active"},
            },
            {
                "apiVersion": "v1",
                "kind": "Namespace",
                "metadata": {"name": "shop", "labels": {"istio.io/rev": "canary"}},
            },
            id="namespace-keeps-injection-labels",
        ),
    ],
)
def test_trim_keeps_what_the_analysis_reads_and_nothing_secret_like(obj, expected):
    assert trim(obj) == expected


# -- reading -----------------------------------------------------------------------------------


def test_owner_chains_are_named_as_istio_names_them_in_metrics(kube_api_factory, tmp_path):
    api = kube_api_factory(owner_chain_mesh())
    inventory = read_cluster(kubeconfig=str(api.write_kubeconfig(tmp_path / "kubeconfig")))
    got = {key: (w.kind, w.dataplane) for key, w in inventory.workloads.items()}
    assert got == {
        ("apps", "web"): ("Deployment", Dataplane.SIDECAR),  # pod -> ReplicaSet web-<hash> -> Deployment
        ("apps", "db"): ("StatefulSet", Dataplane.SIDECAR),  # istio-proxy as a native-sidecar init container
        ("apps", "node-agent"): ("DaemonSet", Dataplane.NONE),
        ("apps", "nightly-etl"): ("CronJob", Dataplane.NONE),  # pods of two runs fold into one CronJob
        ("apps", "migrate"): ("Job", Dataplane.SIDECAR),
        ("apps", "debug"): ("Pod", Dataplane.NONE),
        ("ambient", "api"): ("Deployment", Dataplane.AMBIENT),  # ambient.istio.io/redirection=enabled
    }
    assert inventory.problems == [] and inventory.warnings == []
    assert inventory.workloads[("apps", "db")].ports == (5432,)
    # Pod labels are kept for selector matching, so the workload-level policy is found.
    assert [pa.ref for pa in inventory.peer_authentications] == ["apps/db-strict"]
    assert inventory.workloads[("apps", "db")].labels["app"] == "db"
    assert inventory.namespaces["apps"].injection_enabled and inventory.namespaces["ambient"].ambient_enabled


def test_a_cluster_read_agrees_with_the_mesh_manifests(kube_api_factory, tmp_path):
    """Pods, owners and all, the cluster yields the workloads the Deployment manifests describe."""
    mesh = catalogue.demo()
    api = kube_api_factory(mesh)
    live = read_cluster(kubeconfig=str(api.write_kubeconfig(tmp_path / "kubeconfig")))
    manifest = tmp_path / "manifests.yaml"
    manifest.write_text(yaml.safe_dump_all(mesh.manifests()), encoding="utf-8")
    files = load_inventory(manifest)

    def shape(inv):
        return {k: (w.kind, w.dataplane, w.ports, w.service_account) for k, w in inv.workloads.items()}

    assert shape(live) == shape(files)
    assert len(live.workloads) == len(mesh.workloads)
    assert sorted(pa.ref for pa in live.peer_authentications) == sorted(pa.ref for pa in files.peer_authentications)
    assert [dr.ref for dr in live.destination_rules] == ["orders/billing-no-tls"]


def test_1200_pods_take_three_pod_calls_of_500(kube_api_factory, tmp_path):
    mesh = catalogue.synthetic(workloads=400, edges=0)
    api = kube_api_factory(mesh.cluster_objects(replicas=3))
    read = read_objects(kubeconfig=str(api.write_kubeconfig(tmp_path / "kubeconfig")))

    pod_calls = api.calls_to("/api/v1/pods")
    assert [c.query.get("limit") for c in pod_calls] == ["500", "500", "500"]
    assert "continue" not in pod_calls[0].query and all(c.query.get("continue") for c in pod_calls[1:])
    pods = [o for o in read.objects if o["kind"] == "Pod"]
    assert len(pods) == 1200 == len({(p["metadata"]["namespace"], p["metadata"]["name"]) for p in pods})
    # namespaces, peerauthentications, destinationrules, authorizationpolicies, replicasets (400: one
    # page), pods (three pages), services and telemetries (none: one call each), and for attribution
    # jobs, cronjobs, nodes
    assert len(api.calls) == 13, api.calls
    inventory = read_cluster(kubeconfig=str(api.write_kubeconfig(tmp_path / "kubeconfig")))
    assert len(inventory.workloads) == 400


def test_old_istio_peer_authentications_are_read_from_v1beta1(kube_api_factory, tmp_path):
    api = kube_api_factory(owner_chain_mesh(), faults={"/apis/security.istio.io/v1": NOT_FOUND})
    inventory = read_cluster(kubeconfig=str(api.write_kubeconfig(tmp_path / "kubeconfig")))
    assert [pa.ref for pa in inventory.peer_authentications] == ["apps/db-strict"]
    assert inventory.warnings == []
    assert [c.status for c in api.calls if "peerauthentications" in c.path] == [404, 200]
    assert api.calls_to("/apis/security.istio.io/v1beta1/peerauthentications")


def test_the_context_flag_chooses_the_cluster(kube_api_factory, tmp_path):
    api = kube_api_factory(owner_chain_mesh())
    kubeconfig = str(api.write_kubeconfig(tmp_path / "kubeconfig", context="mesh", current_context="elsewhere"))
    assert len(read_cluster(kubeconfig=kubeconfig, context="mesh").workloads) == 7
    with pytest.raises(UserError, match=r"cannot reach the Kubernetes API at http://127\.0\.0\.1:1 "):
        read_cluster(kubeconfig=kubeconfig)  # the current context points at a closed port


def test_a_missing_kubeconfig_is_a_clear_error(tmp_path):
    with pytest.raises(UserError, match=r"--kubeconfig .*no such file"):
        read_cluster(kubeconfig=str(tmp_path / "nope"))


# -- faults, through the console script --------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "rule"),
    [
        ("/api/v1/pods", 'apiGroups: [""], resources: ["pods"], verbs: ["list"]'),
        ("/apis/apps/v1/replicasets", 'apiGroups: ["apps"], resources: ["replicasets"], verbs: ["list"]'),
        (
            "/apis/security.istio.io",
            'apiGroups: ["security.istio.io"], resources: ["peerauthentications"], verbs: ["list"]',
        ),
    ],
    ids=["pods", "replicasets", "peerauthentications"],
)
def test_forbidden_list_exits_1_naming_the_rbac_rule(kube_api_factory, tmp_path, path, rule):
    api = kube_api_factory(owner_chain_mesh(), faults={path: FORBIDDEN})
    kubeconfig = api.write_kubeconfig(tmp_path / "kubeconfig")
    proc, _ = _cli(
        "report",
        "--kubeconfig",
        str(kubeconfig),
        "--prometheus-url",
        CLOSED_PORT_URL,
        "--output-dir",
        str(tmp_path / "reports"),
    )
    assert proc.returncode == 1, proc.stderr
    line = _error_line(proc)
    assert rule in line and "403" in line and "ClusterRole" in line
    assert "Traceback" not in proc.stderr
    assert not (tmp_path / "reports" / "latest").exists()


def test_unreachable_api_exits_1_saying_what_to_check(tmp_path):
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(
        yaml.safe_dump(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "clusters": [{"name": "gone", "cluster": {"server": "http://127.0.0.1:1"}}],
                "users": [{"name": "u", "user": {"token": "t"}}],
                "contexts": [{"name": "gone", "context": {"cluster": "gone", "user": "u"}}],
                "current-context": "gone",
            }
        ),
        encoding="utf-8",
    )
    proc, _ = _cli("snapshot", "--kubeconfig", str(kubeconfig), "--output", str(tmp_path / "snap.yaml"))
    assert proc.returncode == 1
    line = _error_line(proc)
    assert "cannot reach the Kubernetes API at http://127.0.0.1:1" in line and "--context" in line
    assert not (tmp_path / "snap.yaml").exists()


def test_a_slow_api_fails_within_the_timeout_and_keeps_the_previous_report(kube_api_factory, tmp_path):
    reports = tmp_path / "reports"
    first, _ = _cli("demo", "--output-dir", str(reports))
    assert first.returncode in (0, 2), first.stderr
    before = _tree_digest(reports)
    latest_before = (reports / "latest").resolve()

    api = kube_api_factory(owner_chain_mesh(), faults={"/api/v1/pods": slow(30)})
    kubeconfig = api.write_kubeconfig(tmp_path / "kubeconfig")
    proc, elapsed = _cli(
        "report",
        "--kubeconfig",
        str(kubeconfig),
        "--kube-timeout",
        "2",
        "--prometheus-url",
        CLOSED_PORT_URL,
        "--output-dir",
        str(reports),
    )
    assert proc.returncode == 1, proc.stderr
    line = _error_line(proc)
    assert "did not answer listing pods within 2s" in line and "--kube-timeout" in line
    assert elapsed < 15, f"took {elapsed:.1f}s: the 30s answer was waited for"
    assert len(api.calls_to("/api/v1/pods")) == 1  # no silent retries stretching the timeout
    assert _tree_digest(reports) == before and (reports / "latest").resolve() == latest_before


# -- a full run, a snapshot, and a run from the snapshot ----------------------------------------


def test_report_from_the_cluster_and_from_its_snapshot_are_identical(
    kube_api_factory, demo_prometheus, frozen_clock, tmp_path, monkeypatch, capsys
):
    mesh = catalogue.demo()
    prometheus = demo_prometheus
    objects = mesh.cluster_objects()
    secret = {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": "db", "namespace": "data"},
        "data": {"password": "aHVudGVyMg=="},
    }
    for obj in objects:  # what a real cluster carries that a snapshot must never
        if obj["kind"] == "Pod" and obj["metadata"]["name"].startswith("postgres-"):
            obj["spec"]["containers"][0]["env"].append({"name": "PGPASSWORD", "value": "hunter2"})
        if obj["kind"] == "PeerAuthentication":
            obj["metadata"] = {
                **obj["metadata"],
                "annotations": {"kubectl.kubernetes.io/last-applied-configuration": '{"token": "hunter2"}'},
            }
    api = kube_api_factory([*objects, secret])
    kubeconfig = str(api.write_kubeconfig(tmp_path / "kubeconfig"))
    common = ["--prometheus-url", prometheus, "--lookback", "7d"]

    live_code = cli.main(
        [
            "report",
            "--policies-from",
            "kube",
            "--kubeconfig",
            kubeconfig,
            *common,
            "--output-dir",
            str(tmp_path / "live"),
        ]
    )
    # The env twin configures snapshot like any other flag.
    monkeypatch.setenv("MTLS_READINESS_KUBECONFIG", kubeconfig)
    snapshot = tmp_path / "snapshot.yaml"
    assert cli.main(["snapshot", "--output", str(snapshot)]) == 0
    monkeypatch.delenv("MTLS_READINESS_KUBECONFIG")
    replay_code = cli.main(
        ["report", "--policies-from", str(snapshot), *common, "--output-dir", str(tmp_path / "replay")]
    )
    capsys.readouterr()

    assert live_code == replay_code == 2  # analytics/reports is UNKNOWN by design of the demo mesh
    for table in TABLES:
        live = (tmp_path / "live" / "latest" / table).read_text(encoding="utf-8")
        replay = (tmp_path / "replay" / "latest" / table).read_text(encoding="utf-8")
        assert live == replay, table

    text = snapshot.read_text(encoding="utf-8")
    assert text.startswith("# mtls-readiness snapshot")
    body = "".join(line for line in text.splitlines(keepends=True) if not line.startswith("#"))
    for leaked in ("hunter2", "aHVudGVyMg", "managedFields", "last-applied-configuration", "PGPASSWORD", "env:"):
        assert leaked not in body
    kinds = {doc["kind"] for doc in yaml.safe_load_all(body) if doc}
    assert kinds == {
        "Namespace",
        "PeerAuthentication",
        "DestinationRule",
        "ReplicaSet",
        "Pod",
        "Job",
        "CronJob",
        "Node",
    }
    assert not any("secrets" in c.path for c in api.calls)

    workloads = {(r["namespace"], r["workload"]): r for r in _rows(tmp_path / "live" / "latest" / "workloads.csv")}
    assert (workloads[("data", "etl")]["kind"], workloads[("data", "etl")]["dataplane"]) == ("CronJob", "none")
    assert workloads[("data", "etl")]["verdict"] == "NOT_MESHED"
    assert workloads[("data", "postgres")]["verdict"] == "BLOCKED"  # the CronJob's plaintext TCP
    assert workloads[("edge", "gateway-api")]["dataplane"] == "ambient"
    assert workloads[("payments", "api")]["verdict"] == "ENFORCED"
    assert workloads[("legacy-db", "mysql")]["verdict"] == "DISABLED"
    assert workloads[("legacy-db", "mysql")]["mode_source"] == "legacy-db/mysql-disable"
    namespaces = {r["namespace"]: r for r in _rows(tmp_path / "live" / "latest" / "namespaces.csv")}
    assert namespaces["monitoring"]["injection"] == "none" and namespaces["shop"]["injection"] == "sidecar"


def test_missing_istio_crds_warn_and_leave_every_workload_permissive(
    kube_api_factory, demo_prometheus, frozen_clock, tmp_path, capsys
):
    mesh = catalogue.demo()
    prometheus = demo_prometheus
    api = kube_api_factory(mesh, faults={"/apis/security.istio.io": NOT_FOUND})
    kubeconfig = str(api.write_kubeconfig(tmp_path / "kubeconfig"))
    code = cli.main(
        ["report", "--kubeconfig", kubeconfig, "--prometheus-url", prometheus, "--output-dir", str(tmp_path / "out")]
    )
    capsys.readouterr()
    assert code == 2  # complete but for the demo's UNKNOWN workload: no crash
    summary = json.loads((tmp_path / "out" / "latest" / "summary.json").read_text(encoding="utf-8"))
    assert any(w.startswith(SECURITY_CRDS_MISSING) for w in summary["warnings"])
    rows = _rows(tmp_path / "out" / "latest" / "workloads.csv")
    assert len(rows) == len(mesh.workloads)
    assert {(r["mode"], r["mode_source"]) for r in rows} == {("PERMISSIVE", "default")}
    verdicts = {(r["namespace"], r["workload"]): r["verdict"] for r in rows}
    assert verdicts[("payments", "api")] == "READY"  # ENFORCED when its STRICT policy is readable
    assert [c.status for c in api.calls if "peerauthentications" in c.path] == [404, 404]


def test_malformed_custom_resources_from_the_cluster_are_reported_skipped_and_doubted(kube_api_factory, tmp_path):
    """The API server stores what the CRD schema lets through (or older CRDs that let anything
    through); the cluster reader goes through the same typed reader as files."""
    objects = catalogue.demo().cluster_objects()
    bad_pa = {
        "apiVersion": "security.istio.io/v1",
        "kind": "PeerAuthentication",
        "metadata": {"name": "edge-default", "namespace": "edge"},
        "spec": {"mtls": {"mode": "Strict"}},
    }
    bad_dr = {
        "apiVersion": "networking.istio.io/v1",
        "kind": "DestinationRule",
        "metadata": {"name": "odd", "namespace": "shop"},
        "spec": {"host": "cart", "trafficPolicy": {"portLevelSettings": [1]}},
    }
    api = kube_api_factory([*objects, bad_pa, bad_dr])
    kubeconfig = api.write_kubeconfig(tmp_path / "kubeconfig")
    inventory = read_cluster(kubeconfig=str(kubeconfig))
    assert sorted(inventory.problems) == [
        "cluster: skipped DestinationRule shop/odd: spec.trafficPolicy.portLevelSettings.0: expected a map",
        "cluster: skipped PeerAuthentication edge/edge-default: spec.mtls.mode: expected 'UNSET', 'DISABLE', "
        "'PERMISSIVE' or 'STRICT' (exact spelling), got 'Strict'",
    ]
    assert list(inventory.policy_doubts) == ["edge"]
    assert len(inventory.workloads) == len(catalogue.demo().workloads)  # the run went on
    # A snapshot keeps the bad objects as they are, so a replay reports them the same way.
    snapshot = tmp_path / "snapshot.yaml"
    write_snapshot(read_objects(kubeconfig=str(kubeconfig)), snapshot)
    replay = load_inventory(snapshot)

    def skipped(problems):
        return sorted(p.split(": skipped ", 1)[1] for p in problems)

    assert skipped(replay.problems) == skipped(inventory.problems)
    assert list(replay.policy_doubts) == ["edge"]
