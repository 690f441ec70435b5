"""Helpers shared by the end-to-end tests: write policy files, run the real CLI, read what it published."""

from __future__ import annotations

import csv
import json
import os
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import pytest
import yaml

from analyzer.cli import main
from analyzer.sample.mesh import SampleMesh

LOOKBACK = "1d"
HISTORY = timedelta(hours=30)  # how much data each test Prometheus holds; more than LOOKBACK


def write_policies(mesh: SampleMesh, folder: Path, name: str = "policies.yaml") -> Path:
    """The mesh's manifests as one multi-document YAML file, as `--policies-from` reads them."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_text(yaml.safe_dump_all(mesh.manifests(), sort_keys=False), encoding="utf-8")
    return path


def read_csv(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8", newline="") as stream:
        return list(csv.DictReader(stream))


@dataclass
class Report:
    """One `mtls-readiness report` run and the files it published under latest/."""

    code: int
    stdout: str
    output_dir: Path
    run_folder: Path
    summary: dict
    edges: list[dict[str, str]]
    workloads: dict[str, dict[str, str]]  # "namespace/workload" -> row
    namespaces: dict[str, dict[str, str]]  # namespace -> row

    def verdict(self, ref: str) -> str:
        return self.workloads[ref]["verdict"]

    def edges_to(self, ref: str) -> list[dict[str, str]]:
        ns, name = ref.split("/", 1)
        return [e for e in self.edges if e["destination_namespace"] == ns and e["destination_workload"] == name]


def read_latest(output_dir: Path, code: int = 0, stdout: str = "") -> Report:
    latest = output_dir / "latest"
    run_folder = (output_dir / os.readlink(latest)).resolve()
    return Report(
        code=code,
        stdout=stdout,
        output_dir=output_dir,
        run_folder=run_folder,
        summary=json.loads((latest / "summary.json").read_text(encoding="utf-8")),
        edges=read_csv(latest / "edges.csv"),
        workloads={f"{r['namespace']}/{r['workload']}": r for r in read_csv(latest / "workloads.csv")},
        namespaces={r["namespace"]: r for r in read_csv(latest / "namespaces.csv")},
    )


def run_report(
    capsys: pytest.CaptureFixture[str] | None,
    url: str,
    policies: Path,
    output_dir: Path,
    *extra: str,
    lookback: str = LOOKBACK,
) -> Report:
    """`mtls-readiness report` in process; returns what it published."""
    argv = ["report", "--prometheus-url", url, "--policies-from", str(policies), "--output-dir", str(output_dir)]
    code = main([*argv, "--lookback", lookback, *extra])
    stdout = capsys.readouterr().out if capsys is not None else ""
    return read_latest(output_dir, code, stdout)


def short_history(mesh: SampleMesh, history: timedelta = HISTORY) -> SampleMesh:
    mesh.history = history
    return mesh
