"""The selector a suggested policy uses: it must match its workload and no other in the namespace."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from analyzer.analyse.remediation import Neighbours, workload_selector
from analyzer.model.inventory import Workload

_LABELS = st.dictionaries(
    st.sampled_from(["app", "name", "version", "pod-template-hash", "tier"]),
    st.sampled_from(["a", "b", "c"]),
    max_size=4,
)
_NAMESPACE = st.lists(
    st.tuples(st.sampled_from(["w1", "w2", "w3", "w4", "w5"]), _LABELS),
    min_size=1,
    max_size=5,
    unique_by=lambda m: m[0],
)


def _matches(selector: dict[str, str], workload: Workload) -> bool:
    return all(workload.labels.get(k) == v for k, v in selector.items())


@given(_NAMESPACE)
def test_the_selector_matches_its_workload_and_no_other(members: list[tuple[str, dict[str, str]]]) -> None:
    workloads = [Workload("shop", name, "Deployment", labels) for name, labels in members]
    neighbours = Neighbours(workloads)
    for workload in workloads:
        selector = workload_selector(workload, neighbours)
        others = [o for o in workloads if o.key != workload.key]
        if selector is not None:
            assert selector and _matches(selector, workload)
            assert not any(_matches(selector, o) for o in others)
        else:  # no non-volatile label set of its own singles it out
            own = {k: v for k, v in workload.labels.items() if k != "pod-template-hash"}
            assert not own or any(_matches(own, o) for o in others)


def test_a_shared_app_label_falls_back_to_all_stable_labels() -> None:
    web = Workload("shop", "web", "Deployment", {"app": "shop", "tier": "web", "pod-template-hash": "1"})
    api = Workload("shop", "api", "Deployment", {"app": "shop", "tier": "api"})
    neighbours = Neighbours([web, api])
    assert workload_selector(web, neighbours) == {"app": "shop", "tier": "web"}
    assert workload_selector(api, Neighbours([api])) == {"app": "shop"}
