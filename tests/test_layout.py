"""Imports only go down the pipeline: model < collect < analyse < write (read from the source, with ast)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "analyzer"
# What each stage must never import. Wiring (cli, pipeline, api, config, errors, the package) may import anything.
FORBIDDEN = {
    "model": {"collect", "analyse", "write", "sample"},
    "collect": {"analyse", "write", "sample"},
    "analyse": {"collect", "write", "sample"},
    "write": {"collect", "analyse", "sample"},
    "sample": {"write"},
}
WIRING = {"cli", "pipeline", "api", "config", "errors", "__init__", "__main__"}


def _modules() -> list[Path]:
    return sorted(p for p in PACKAGE.rglob("*.py") if "__pycache__" not in p.parts)


def _stage(path: Path) -> str:
    parts = path.relative_to(PACKAGE).with_suffix("").parts
    return parts[0]


def imported_stages(path: Path, root: Path = PACKAGE) -> dict[str, int]:
    """analyzer.<stage> imported by the module at `path` (top level or inside functions) -> first line."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    package = ".".join(("analyzer", *path.relative_to(root).with_suffix("").parts[:-1]))
    found: dict[str, int] = {}
    for node in ast.walk(tree):
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative: resolve against the module's package
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                module = ".".join([*base, *([node.module] if node.module else [])])
            else:
                module = node.module or ""
            names = [module] + ([f"{module}.{a.name}" for a in node.names] if module == "analyzer" else [])
        for name in names:
            parts = name.split(".")
            if parts[0] == "analyzer" and len(parts) > 1:
                found.setdefault(parts[1], node.lineno)
    return found


def test_every_module_is_in_a_known_stage():
    stages = {_stage(p) for p in _modules()}
    unknown = {s for s in stages if s not in FORBIDDEN and s not in WIRING}
    assert not unknown, f"modules outside model/collect/analyse/write/sample and the wiring: {unknown}"


@pytest.mark.parametrize("path", _modules(), ids=lambda p: str(p.relative_to(PACKAGE)))
def test_no_module_imports_a_later_stage(path: Path):
    stage = _stage(path)
    bad = {s: line for s, line in imported_stages(path).items() if s in FORBIDDEN.get(stage, set())}
    assert not bad, f"analyzer/{path.relative_to(PACKAGE)} ({stage}) imports {bad} (stage: first line)"


def test_the_walk_sees_every_form_of_import(tmp_path: Path):
    # A checker that missed a form of import would pass everything: each form must be caught.
    probe = tmp_path / "analyzer" / "write" / "probe.py"
    probe.parent.mkdir(parents=True)
    probe.write_text(
        "import analyzer.collect.kube\n"
        "from analyzer.analyse import figures\n"
        "from analyzer import sample\n"
        "def f():\n    from ..model import report\n",
        encoding="utf-8",
    )
    assert set(imported_stages(probe, tmp_path / "analyzer")) == {"collect", "analyse", "sample", "model"}
