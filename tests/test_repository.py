"""The repository explains itself: no comment points at a file outside it, no path of a machine."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
# Built from parts, so that this file does not match itself.
OUTSIDE_DOCS = ("CONTRACT" + ".md", "ISTIO-" + "SEMANTICS")
MACHINE_PATHS = ("/" + "work/", "/" + "root/", "/" + "home/", "/" + "tmp/pytest-")


def tracked_text_files() -> list[Path]:
    names = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True).stdout.split()
    files = []
    for name in names:
        path = ROOT / name
        if path.suffix in {".png", ".svg"} or not path.is_file():
            continue
        files.append(path)
    return files


@pytest.mark.parametrize("needle", OUTSIDE_DOCS + MACHINE_PATHS)
def test_no_tracked_file_names(needle: str) -> None:
    hits = []
    for path in tracked_text_files():
        try:
            text = path.read_text(encoding="utf-8")
        except UnicodeDecodeError:
            continue
        hits += [f"{path.relative_to(ROOT)}:{n}" for n, line in enumerate(text.splitlines(), 1) if needle in line]
    assert not hits, f"{needle!r} appears in {hits[:10]}"


def test_the_docs_the_code_points_at_exist() -> None:
    for name in ("docs/contract.md", "docs/semantics.md", "docs/architecture.md", "docs/result.schema.json"):
        assert (ROOT / name).is_file(), name
