"""Property-based: hostile objects of every kind never sink a run, and each bad one is reported once.

Objects start from a valid manifest of each kind read today; Hypothesis then replaces parts of it
with garbage (random types, lists for maps, huge and odd unicode strings, non-numeric ports),
deletes keys and adds extra ones.
"""

from __future__ import annotations

import copy
import json
import tempfile
from pathlib import Path
from typing import Any

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from analyzer.collect.manifests import build_inventory
from analyzer.collect.policy_files import load_inventory

HUGE = "\u202e" + "x" * 20_000
TEXT = st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=12)
TRICKY = st.sampled_from(
    ["STRICT", "Strict", "strict", "PERMISSIVE", "DISABLE", "UNSET", "8080", "http", "-1", "0", "65536", "", "true"]
)
SCALARS = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | TEXT
    | TRICKY
    | st.just(HUGE)
)
KEYS = TEXT | TRICKY | st.sampled_from(["metadata", "spec", "name", "mode", "ports", "labels", "matchExpressions"])
GARBAGE = st.recursive(
    SCALARS, lambda inner: st.lists(inner, max_size=3) | st.dictionaries(KEYS, inner, max_size=3), max_leaves=12
)

_META = {"name": "obj", "namespace": "shop", "labels": {"app": "web"}, "creationTimestamp": "2024-01-01T00:00:00Z"}
_POD_SPEC = {
    "serviceAccountName": "web",
    "hostNetwork": False,
    "containers": [{"name": "app", "ports": [{"containerPort": 8080}]}, {"name": "istio-proxy"}],
    "initContainers": [{"name": "istio-init"}],
}
_TEMPLATE = {
    "metadata": {"labels": {"app": "web"}, "annotations": {"sidecar.istio.io/inject": "true"}},
    "spec": _POD_SPEC,
}
VALID: list[dict[str, Any]] = [
    {
        "apiVersion": f"security.istio.io/{version}",
        "kind": "PeerAuthentication",
        "metadata": _META,
        "spec": {
            "selector": {"matchLabels": {"app": "web"}},
            "mtls": {"mode": "STRICT"},
            "portLevelMtls": {"8080": {"mode": "PERMISSIVE"}},
        },
    }
    for version in ("v1", "v1beta1")
] + [
    {
        "apiVersion": "networking.istio.io/v1",
        "kind": "DestinationRule",
        "metadata": _META,
        "spec": {
            "host": "web.shop.svc.cluster.local",
            "exportTo": ["."],
            "workloadSelector": {"matchLabels": {"app": "web"}},
            "trafficPolicy": {
                "tls": {"mode": "ISTIO_MUTUAL"},
                "portLevelSettings": [{"port": {"number": 8080}, "tls": {"mode": "DISABLE"}}],
            },
        },
    },
    {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "shop", "labels": {"istio-injection": "enabled"}}},
    {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            **_META,
            "annotations": {"sidecar.istio.io/status": "{}"},
            "ownerReferences": [{"kind": "ReplicaSet", "name": "web-abc", "controller": True}],
        },
        "spec": _POD_SPEC,
    },
    *(
        {"apiVersion": "apps/v1", "kind": kind, "metadata": _META, "spec": {"template": _TEMPLATE}}
        for kind in ("Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "Job")
    ),
    {
        "apiVersion": "batch/v1",
        "kind": "CronJob",
        "metadata": _META,
        "spec": {"jobTemplate": {"spec": {"template": _TEMPLATE}}},
    },
]


def _mutate(value: Any, draw: Any, depth: int = 0) -> Any:
    """The value with random parts replaced by garbage, keys dropped and extra keys added."""
    if depth > 0 and draw(st.integers(0, 9)) == 0:
        return draw(GARBAGE)
    if isinstance(value, dict):
        out = {}
        for key, child in value.items():
            if key == "kind" and depth == 0:
                out[key] = child  # keep the kind so every reader is exercised
            elif draw(st.integers(0, 11)) != 0:
                out[key] = _mutate(child, draw, depth + 1)
        if draw(st.integers(0, 7)) == 0:
            out[draw(KEYS)] = draw(GARBAGE)
        return out
    if isinstance(value, list):
        return [_mutate(child, draw, depth + 1) for child in value]
    return value


@st.composite
def hostile(draw: Any) -> dict[str, Any]:
    return _mutate(copy.deepcopy(draw(st.sampled_from(VALID))), draw)


def _read(inv: Any) -> int:
    return len(inv.peer_authentications) + len(inv.destination_rules) + len(inv.namespaces) + len(inv.workloads)


def _other_api(obj: dict[str, Any]) -> bool:
    """A PeerAuthentication or DestinationRule of a group other than Istio's is not read, rightly."""
    api = obj.get("apiVersion")
    groups = {"PeerAuthentication": "security.istio.io", "DestinationRule": "networking.istio.io"}
    return isinstance(api, str) and obj["kind"] in groups and api.split("/")[0] != groups[obj["kind"]]


PROPERTY = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@PROPERTY
@given(st.lists(hostile(), min_size=1, max_size=6))
def test_hostile_objects_never_raise_and_each_bad_one_is_reported_once(objects: list[dict[str, Any]]) -> None:
    alone = []
    for obj in objects:
        inv = build_inventory([(obj, "alone")])
        # Read, or exactly one problem: never both, never neither (unless another API's), never raised.
        outcomes = {(1, 0), (0, 1)} | ({(0, 0)} if _other_api(obj) else set())
        assert (_read(inv), len(inv.problems)) in outcomes, (inv.problems, obj)
        for problem in inv.problems:
            assert len(problem) < 700 and HUGE[:50] not in problem
        if inv.problems and obj["kind"] == "PeerAuthentication":
            assert inv.policy_doubts, "an unreadable PeerAuthentication must cast doubt on its scope"
        alone.append(len(inv.problems))
    together = build_inventory([(obj, f"origin-{i}") for i, obj in enumerate(objects)])
    for i, count in enumerate(alone):
        assert sum(p.startswith(f"origin-{i}: ") for p in together.problems) == count


@PROPERTY
@given(st.lists(hostile(), min_size=1, max_size=4), st.sampled_from(["json", "yaml"]))
def test_hostile_objects_from_files_never_raise_and_match_the_objects(objects: list[dict[str, Any]], form: str) -> None:
    expected = len(build_inventory([(obj, "o") for obj in objects]).problems)
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / f"objects.{form}"
        if form == "json":
            path.write_text(json.dumps({"apiVersion": "v1", "kind": "List", "items": objects}), encoding="utf-8")
        else:
            path.write_text(yaml.safe_dump_all(objects), encoding="utf-8")
        inv = load_inventory(path)
    assert len(inv.problems) == expected
    assert all(p.startswith(str(path)) for p in inv.problems)
