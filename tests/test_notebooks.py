"""Every notebook runs top to bottom on a fresh kernel: on the sample mesh, and against a real
Prometheus (PROMETHEUS_URL, policies from a YAML file). Committed notebooks carry no outputs."""

from __future__ import annotations

import asyncio
import os
import re
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

import nbformat
import pytest
import yaml
from nbclient import NotebookClient
from nbformat import NotebookNode

from analyzer import cli
from analyzer.sample import catalogue
from tests.support.prometheus import PrometheusServer, serve_mesh

NOTEBOOKS = Path(__file__).resolve().parent.parent / "notebooks"
# Settings the notebooks read; cleared so the developer's shell cannot steer a run.
NOTEBOOK_ENV = ("PROMETHEUS_URL", "POLICIES_FROM", "LOOKBACK", "NAMESPACE", "WORKLOAD", "REPORT_DIR")


@dataclass(frozen=True)
class Expect:
    figures: tuple[str, ...]  # cell ids that must draw a figure
    text: dict[str, tuple[str, ...]] = field(default_factory=dict)  # cell id -> regexes its output matches
    absent: dict[str, tuple[str, ...]] = field(default_factory=dict)  # cell id -> regexes it must not match


COMMON = {
    "01-readiness-overview": Expect(
        figures=("01-verdicts-chart", "01-namespaces-chart", "01-timeline-chart"),
        text={
            "01-setup": (r"mesh verdict: BLOCKED",),
            "01-verdicts-table": (r"BLOCKED", r"READY", r"NO_TRAFFIC", r"ENFORCED", r"DISABLED", r"NOT_MESHED"),
            "01-blockers-table": (r"billing", r"meshed", r"DestinationRule orders/billing-no-tls"),
            "01-ready-yaml": (r"# shop: READY", r"mode: STRICT"),
        },
        # legacy-db receives plaintext behind its workload-level DISABLE: BLOCKED, nothing to apply.
        absent={"01-ready-yaml": (r"legacy-db",)},
    ),
    "02-drilldown": Expect(
        figures=("02-timeline-chart", "02-unknown-chart"),
        text={
            "02-target": (r"drilling into orders/web", r"BLOCKED", r"plaintext from unknown"),
            "02-callers": (r"unmeshed", r"a caller without a sidecar"),
            # The nightly ETL's one burst of plaintext TCP is told apart from always-on callers.
            "02-unknown-table": (r"data/postgres", r"bursts", r"steady", r"orders/web"),
        },
    ),
    "03-what-if": Expect(
        figures=("03-namespace-chart",),
        text={
            "03-suggested": (r"namespace: shop", r"safe to apply"),
            "03-namespace": (r"would cut off 2 observed plaintext client", r"unknown", r"orders/billing"),
            "03-exception": (r"name: web-permissive", r"would cut off 1 observed plaintext client", r"orders/billing"),
        },
        absent={"03-exception": (r"unknown\s+orders/web",)},
    ),
}


def _notebook_paths() -> list[Path]:
    return sorted(NOTEBOOKS.glob("*.ipynb"))


def _env(**settings: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in NOTEBOOK_ENV}
    return {**env, **settings}


async def _execute(path: Path, env: dict[str, str]) -> NotebookNode | BaseException:
    notebook = nbformat.read(path, as_version=4)
    client = NotebookClient(
        notebook, kernel_name="python3", timeout=120, resources={"metadata": {"path": str(NOTEBOOKS)}}
    )
    try:
        await client.async_execute(env=env)
    except BaseException as exc:  # reported by the test of this notebook, not by the fixture
        return exc
    return notebook


def _execute_all(env: dict[str, str]) -> dict[str, NotebookNode | BaseException]:
    """All notebooks at once, each in its own kernel: most of the time is kernel start and import."""

    async def run() -> list[NotebookNode | BaseException]:
        return await asyncio.gather(*(_execute(p, env) for p in _notebook_paths()))

    return {p.stem: nb for p, nb in zip(_notebook_paths(), asyncio.run(run()), strict=True)}


@pytest.fixture(scope="module")
def executed(tmp_path_factory: pytest.TempPathFactory, now: datetime) -> Iterator[dict[str, dict]]:
    """Run every notebook twice: sample mesh (with a published run to load), then live Prometheus."""
    mesh = catalogue.demo()
    policies = tmp_path_factory.mktemp("policies") / "mesh.yaml"
    policies.write_text(yaml.safe_dump_all(mesh.manifests()), encoding="utf-8")
    report_dir = tmp_path_factory.mktemp("reports")
    assert cli.main(["demo", "--output-dir", str(report_dir)]) == 0  # published; its UNKNOWN is on purpose

    with ThreadPoolExecutor(max_workers=1) as pool:
        # Backfilling Prometheus takes a while: do it while the sample runs execute.
        # A 15-minute scrape keeps the block small; the verdicts do not depend on it.
        started: Future[PrometheusServer] = pool.submit(
            serve_mesh, mesh, tmp_path_factory.mktemp("prometheus"), now, timedelta(minutes=15)
        )
        sample = _execute_all(_env(REPORT_DIR=str(report_dir)))
        server = started.result()
    try:
        live = _execute_all(_env(PROMETHEUS_URL=server.url, POLICIES_FROM=str(policies)))
    finally:
        server.stop()
    run_id = next((report_dir / "runs").iterdir()).name
    yield {"sample": sample, "live": live, "url": server.url, "run_id": run_id}


def _outputs_text(cell: NotebookNode) -> str:
    parts = []
    for output in cell.get("outputs", []):
        if output.output_type == "stream":
            parts.append(output.text)
        elif output.output_type in ("execute_result", "display_data"):
            parts.append(output.data.get("text/plain", ""))
    return "\n".join(parts)


def _figures(cell: NotebookNode) -> int:
    return sum(
        1
        for output in cell.get("outputs", [])
        if output.output_type in ("execute_result", "display_data")
        and ({"image/png", "image/svg+xml"} & set(output.data))
    )


def _check(notebook: NotebookNode | BaseException, expect: Expect) -> dict[str, NotebookNode]:
    if isinstance(notebook, BaseException):
        pytest.fail(f"notebook did not run to the end: {type(notebook).__name__}: {notebook}")
    cells = {cell.id: cell for cell in notebook.cells}
    errors = [o for c in notebook.cells for o in c.get("outputs", []) if o.output_type == "error"]
    assert errors == []
    assert all(c.execution_count for c in notebook.cells if c.cell_type == "code"), "a code cell did not run"
    for cell_id in expect.figures:
        assert _figures(cells[cell_id]) == 1, f"{cell_id} drew no figure: {_outputs_text(cells[cell_id])[:300]}"
    for cell_id, patterns in expect.text.items():
        text = _outputs_text(cells[cell_id])
        for pattern in patterns:
            assert re.search(pattern, text), f"{cell_id}: no {pattern!r} in\n{text[:2000]}"
    for cell_id, patterns in expect.absent.items():
        text = _outputs_text(cells[cell_id])
        for pattern in patterns:
            assert not re.search(pattern, text), f"{cell_id}: unexpected {pattern!r} in\n{text[:2000]}"
    return cells


def test_every_notebook_has_expectations():
    assert sorted(p.stem for p in _notebook_paths()) == sorted(COMMON)


@pytest.mark.parametrize("name", sorted(COMMON))
def test_notebook_runs_on_the_sample_mesh(executed, name):
    cells = _check(executed["sample"][name], COMMON[name])
    assert "sample mesh (built in)" in _outputs_text(cells[f"{name[:2]}-setup"])
    if name == "01-readiness-overview":
        # REPORT_DIR pointed at what `mtls-readiness demo` wrote: load_run read it back.
        published = _outputs_text(cells["01-published"])
        assert f"run {executed['run_id']}: mesh verdict BLOCKED" in published
        assert re.search(r"BLOCKED\s+6\b", published) and re.search(r"NOT_MESHED\s+4\b", published)
        assert _figures(cells["01-published"]) == 1


@pytest.mark.parametrize("name", sorted(COMMON))
def test_notebook_runs_against_prometheus(executed, name):
    cells = _check(executed["live"][name], COMMON[name])
    setup = _outputs_text(cells[f"{name[:2]}-setup"])
    assert executed["url"] in setup and "sample mesh" not in setup
    if name == "01-readiness-overview":
        assert "set REPORT_DIR" in _outputs_text(cells["01-published"])


@pytest.mark.parametrize("path", _notebook_paths(), ids=lambda p: p.name)
def test_committed_notebook_has_no_outputs(path):
    notebook = nbformat.read(path, as_version=4)
    nbformat.validate(notebook)
    code = [c for c in notebook.cells if c.cell_type == "code"]
    assert code, "a notebook without code"
    assert [c.id for c in code if c.outputs] == [], "clear outputs before committing"
    assert [c.id for c in code if c.execution_count is not None] == [], "clear execution counts before committing"
    assert [c.id for c in notebook.cells if "execution" in c.metadata] == []
    assert notebook.metadata["kernelspec"]["name"] == "python3"
    assert any(c.cell_type == "markdown" for c in notebook.cells[:1]), "start with a markdown explanation"
