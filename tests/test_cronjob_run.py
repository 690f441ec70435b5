"""The CronJob's container, run for real.

The command line is the one the CronJob manifest and the Dockerfile make (ENTRYPOINT + the
container's args), the environment is the image's ENV plus the ConfigMap, and the container's
volume mounts become temporary folders. Only the endpoints change: the Prometheus URL points at a
real Prometheus on loopback, and MTLS_READINESS_KUBECONFIG at a kubeconfig for the loopback
Kubernetes API (in a cluster the job uses its service account instead). The installed console
script runs it as a subprocess, and the test reads what it published.
"""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sysconfig
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

import pytest

from analyzer.cli import EXIT_INCOMPLETE, EXIT_OK
from analyzer.sample import catalogue
from tests.support.deploy import (
    CRONJOB,
    Dockerfile,
    job_container,
    job_environment,
    job_pod_spec,
    load_dockerfile,
    one,
    render,
)


@dataclass
class ContainerRun:
    argv: list[str]
    env: dict[str, str]
    cwd: Path
    volumes: dict[PurePosixPath, Path]  # mountPath -> the folder standing in for it

    def host_path(self, value: str) -> str:
        """`value` with a mounted container path replaced by its stand-in folder."""
        if not value.startswith("/"):
            return value
        path = PurePosixPath(value)
        for mount, folder in sorted(self.volumes.items(), key=lambda item: -len(item[0].parts)):
            if path == mount or mount in path.parents:
                return str(folder.joinpath(*path.relative_to(mount).parts))
        return value

    def volume(self, mount: str) -> Path:
        return self.volumes[PurePosixPath(mount)]


def container_run(objects: list[dict], dockerfile: Dockerfile, root: Path) -> ContainerRun:
    """The job's container as the kubelet would start it, with its volumes under `root`."""
    container = job_container(objects)
    if "command" in container:  # Kubernetes: command replaces ENTRYPOINT (and CMD)
        argv = container["command"] + container.get("args", [])
    else:  # args replace CMD only
        argv = dockerfile.entrypoint + container.get("args", dockerfile.cmd)
    volumes = {PurePosixPath(m["mountPath"]): root / m["name"] for m in container["volumeMounts"]}
    for folder in volumes.values():
        folder.mkdir(parents=True)
    run = ContainerRun(argv=argv, env={}, cwd=root, volumes=volumes)
    scripts = sysconfig.get_path("scripts")
    executable = Path(scripts) / argv[0]
    if not executable.is_file():
        pytest.fail(f"{argv[0]} is not installed in {scripts}: pip install -e . (tests/run.sh does)")
    run.argv = [str(executable), *argv[1:]]
    image_env = {k: v for k, v in dockerfile.final.env().items() if k != "PATH"}
    run.env = {k: run.host_path(v) for k, v in {**image_env, **job_environment(objects)}.items()}
    run.env["PATH"] = os.pathsep.join([scripts, "/usr/local/bin", "/usr/bin", "/bin"])
    run.cwd = Path(run.host_path(dockerfile.final.all("WORKDIR")[-1]))
    return run


def job_outcome(objects: list[dict], exit_code: int) -> str:
    """What the Job controller does with the pod's exit code, per the CronJob's podFailurePolicy."""
    if exit_code == 0:
        return "succeeded"
    job = one(objects, "CronJob", "mtls-readiness")["spec"]["jobTemplate"]["spec"]
    for rule in job["podFailurePolicy"]["rules"]:
        on_exit = rule.get("onExitCodes")
        if on_exit and on_exit["operator"] == "In" and exit_code in on_exit["values"]:
            return {"FailJob": "failed, not retried", "Ignore": "retried", "Count": "retried"}[rule["action"]]
    return "retried"


def read_csv(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8", newline="") as f:
        return list(csv.DictReader(f))


def api_groups_listed(calls) -> set[tuple[str, str]]:
    """(API group, resource) of every list the job sent to the Kubernetes API."""
    listed = set()
    for call in calls:
        parts = [p for p in call.path.split("/") if p]
        group = "" if parts[0] == "api" else parts[1]
        listed.add((group, parts[-1]))
    return listed


@pytest.fixture(scope="module")
def objects() -> list[dict]:
    return render(CRONJOB)


@pytest.fixture(scope="module")
def dockerfile() -> Dockerfile:
    return load_dockerfile()


@pytest.fixture(scope="module")
def prometheus_for(prometheus_factory):
    """One real Prometheus per sample mesh, shared by the tests of this module."""
    urls: dict[str, str] = {}

    def url(mesh_name: str) -> str:
        if mesh_name not in urls:
            urls[mesh_name] = prometheus_factory(catalogue.MESHES[mesh_name]())
        return urls[mesh_name]

    return url


def start_job(objects, dockerfile, root: Path, prometheus_url: str, kubeconfig: Path) -> ContainerRun:
    run = container_run(objects, dockerfile, root)
    configmap = job_environment(objects)
    assert configmap["MTLS_READINESS_POLICIES_FROM"] == "kube", "the job reads policies from the cluster"
    assert "MTLS_READINESS_KUBECONFIG" not in configmap, "in a cluster the job uses its service account"
    run.env["MTLS_READINESS_PROMETHEUS_URL"] = prometheus_url
    run.env["MTLS_READINESS_KUBECONFIG"] = str(kubeconfig)
    return run


def execute(run: ContainerRun) -> subprocess.CompletedProcess:
    return subprocess.run(run.argv, env=run.env, cwd=run.cwd, capture_output=True, text=True, timeout=300, check=False)


@pytest.mark.parametrize(("mesh_name", "expected_exit"), [("demo", EXIT_INCOMPLETE), ("walkthrough", EXIT_OK)])
def test_the_cronjob_command_publishes_a_report(
    mesh_name, expected_exit, objects, dockerfile, prometheus_for, kube_api_factory, tmp_path
):
    mesh = catalogue.MESHES[mesh_name]()
    prometheus_url = prometheus_for(mesh_name)
    api = kube_api_factory(mesh)
    run = start_job(objects, dockerfile, tmp_path / "pod", prometheus_url, api.write_kubeconfig(tmp_path / "kc"))
    assert run.argv[1:] == ["report"]

    result = execute(run)

    assert result.returncode == expected_exit, result.stderr[-3000:]
    reports = run.volume(job_environment(objects)["MTLS_READINESS_OUTPUT_DIR"])
    latest = reports / "latest"
    assert latest.is_symlink()
    [run_dir] = (reports / "runs").iterdir()
    assert latest.resolve() == run_dir.resolve()
    assert f"report: {run_dir / 'index.html'}" in result.stdout
    assert {p.name for p in run_dir.iterdir()} >= {
        "index.html",
        "edges.csv",
        "workloads.csv",
        "namespaces.csv",
        "summary.json",
    }
    assert (reports / "index.html").is_file()

    summary = json.loads((latest / "summary.json").read_text(encoding="utf-8"))
    assert summary["source"] == prometheus_url
    assert summary["lookback"] == job_environment(objects)["MTLS_READINESS_LOOKBACK"]
    assert summary["errors"] == []
    assert not any("CRDs not found" in w for w in summary["warnings"]), summary["warnings"]
    # Exit 2 exactly when some verdict is UNKNOWN (docs/contract.md); the Job then fails without a retry.
    assert (summary["verdicts"].get("UNKNOWN", 0) > 0) == (result.returncode == EXIT_INCOMPLETE)
    assert job_outcome(objects, result.returncode) == (
        "failed, not retried" if expected_exit == EXIT_INCOMPLETE else "succeeded"
    )

    workloads = {(r["namespace"], r["workload"]): r for r in read_csv(latest / "workloads.csv")}
    edges = read_csv(latest / "edges.csv")
    assert {"source_workload", "destination_workload", "plaintext_count", "blocker"} <= set(edges[0])
    # Plaintext from the sidecar-less legacy client (which the server cannot name) blocks foo and bar.
    assert summary["namespaces"]["foo"] == summary["namespaces"]["bar"] == "BLOCKED"
    assert workloads[("foo", "httpbin")]["verdict"] == "BLOCKED"
    assert any(
        (e["destination_namespace"], e["destination_workload"], e["blocker"]) == ("foo", "httpbin", "true")
        and float(e["plaintext_count"]) > 0
        for e in edges
    )
    if mesh_name == "demo":
        # Policies reach the report only through the Kubernetes API: the namespace-wide STRICT
        # policy in payments and the workload-level DISABLE on legacy-db/mysql.
        assert summary["namespaces"]["payments"] == "ENFORCED"
        assert workloads[("legacy-db", "mysql")]["verdict"] == "DISABLED"
        assert workloads[("legacy-db", "mysql")]["mode_source"] == "legacy-db/mysql-disable"
        assert summary["namespaces"]["analytics"] == "UNKNOWN"
        assert summary["mesh_verdict"] == "BLOCKED"
    else:
        assert summary["verdicts"].get("UNKNOWN", 0) == 0

    # The report draws its charts without matplotlib: nothing imports it, so no cache appears.
    assert not (run.volume("/tmp") / "matplotlib").exists()
    assert list(run.volume("/etc/mtls-readiness/prometheus").iterdir()) == []


def test_the_job_lists_exactly_what_its_cluster_role_grants(
    objects, dockerfile, prometheus_for, kube_api_factory, tmp_path
):
    """Every list the job sends is allowed by the ClusterRole, and every rule is used."""
    api = kube_api_factory(catalogue.walkthrough())
    run = start_job(
        objects, dockerfile, tmp_path / "pod", prometheus_for("walkthrough"), api.write_kubeconfig(tmp_path / "kc")
    )

    result = execute(run)

    assert result.returncode == EXIT_OK, result.stderr[-3000:]
    assert api.calls and all(c.status == 200 for c in api.calls), [(c.path, c.status) for c in api.calls]
    role = one(objects, "ClusterRole", "mtls-readiness-reader")
    granted = {(g, r) for rule in role["rules"] for g in rule["apiGroups"] for r in rule["resources"]}
    assert api_groups_listed(api.calls) == granted


def readable_by(path: Path, *, owner: tuple[int, int], reader: tuple[int, int]) -> bool:
    """Whether a process running as `reader` (uid, gid) could read `path` inside the cluster, where
    the job running as `owner` created it: the mode bits are this run's, the ownership the pod's."""
    mode = path.lstat().st_mode
    need = 0o5 if path.is_dir() else 0o4
    if reader[0] == owner[0]:
        return (mode >> 6) & need == need
    if reader[1] == owner[1]:
        return (mode >> 3) & need == need
    return mode & need == need


def test_a_second_night_publishes_a_new_run_that_nginx_can_serve(
    objects, dockerfile, prometheus_for, kube_api_factory, tmp_path
):
    """Runs share the report volume: the newest becomes latest, the history lists both, and the
    nginx overlay's user can read every file the job published."""
    api = kube_api_factory(catalogue.walkthrough())
    url = prometheus_for("walkthrough")
    run = start_job(objects, dockerfile, tmp_path / "pod", url, api.write_kubeconfig(tmp_path / "kc"))
    first = execute(run)
    second = execute(run)

    assert (first.returncode, second.returncode) == (EXIT_OK, EXIT_OK), second.stderr[-3000:]
    reports = run.volume(job_environment(objects)["MTLS_READINESS_OUTPUT_DIR"])
    runs = sorted((reports / "runs").iterdir())
    assert len(runs) == 2
    assert not [p for p in (reports / "runs").iterdir() if p.name.startswith(".")], "a staging folder was left"
    assert (reports / "latest").resolve() == runs[-1].resolve()
    history = (reports / "index.html").read_text(encoding="utf-8")
    assert all(f'href="runs/{r.name}/index.html"' in history for r in runs)

    job_context = job_pod_spec(objects)["securityContext"]
    nginx = one(render(CRONJOB / "overlays" / "nginx"), "Deployment")["spec"]["template"]["spec"]["securityContext"]
    owner = (job_context["runAsUser"], job_context["fsGroup"])
    reader = (nginx["runAsUser"], nginx["runAsGroup"])
    published = [reports, *reports.rglob("*")]
    assert len(published) > 10
    unreadable = [p for p in published if not readable_by(p, owner=owner, reader=reader)]
    assert unreadable == [], f"nginx (uid {reader[0]}) could not read {unreadable}"


def test_json_logs_are_one_object_per_line(tmp_path: Path) -> None:
    """--log-format json (MTLS_READINESS_LOG_FORMAT in the ConfigMap) for log collectors."""
    import sys

    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1]), "MTLS_READINESS_LOG_FORMAT": "json"}
    done = subprocess.run(
        [sys.executable, "-m", "analyzer", "demo", "--mesh", "walkthrough", "--output-dir", str(tmp_path)],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert done.returncode == EXIT_OK, done.stderr
    lines = [json.loads(line) for line in done.stderr.splitlines()]
    assert lines and all(set(line) == {"time", "level", "message", "logger"} for line in lines)
    assert any("analysed" in line["message"] and line["level"] == "INFO" for line in lines)
