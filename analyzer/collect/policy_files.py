"""Inventory from YAML files: `--policies-from PATH` and `kubectl get -o yaml` output."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import yaml

from analyzer.collect.manifests import build_inventory
from analyzer.errors import UserError
from analyzer.model.inventory import Inventory

SUFFIXES = {".yaml", ".yml", ".json"}
# libyaml's safe loader when PyYAML was built with it: about ten times faster on big dumps.
SAFE_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def _files(path: Path) -> list[Path]:
    if path.is_file():
        return [path]
    if path.is_dir():
        return sorted(p for p in path.rglob("*") if p.is_file() and p.suffix in SUFFIXES)
    raise UserError(f"--policies-from {path}: no such file or directory; give a YAML file, a folder of them, or 'kube'")


def iter_objects(path: Path) -> Iterator[tuple[dict, str]]:
    """Every object in every document, flattening `kind: List`. Yields (object, origin)."""
    for file in _files(path):
        try:
            with file.open(encoding="utf-8") as stream:
                documents = list(yaml.load_all(stream, Loader=SAFE_LOADER))
        except yaml.MarkedYAMLError as exc:
            mark = exc.problem_mark or exc.context_mark
            where = f"{file}:{mark.line + 1}" if mark else str(file)
            problem = (exc.problem or exc.context or "invalid YAML").strip()
            raise UserError(f"{where}: {problem}; fix the YAML or remove the file from --policies-from") from None
        except (yaml.YAMLError, UnicodeDecodeError, OSError) as exc:
            raise UserError(f"{file}: cannot read ({exc}); fix or remove it") from None
        for index, doc in enumerate(documents, start=1):
            origin = f"{file} (document {index})"
            if doc is None:
                continue
            if not isinstance(doc, dict):
                yield {"kind": None}, origin
                continue
            if doc.get("kind", "").endswith("List") and isinstance(doc.get("items"), list):
                for item in doc["items"]:
                    if isinstance(item, dict):
                        yield item, origin
            else:
                yield doc, origin


def load_inventory(path: str | Path, *, cluster: str = "") -> Inventory:
    return build_inventory(iter_objects(Path(path)), cluster=cluster)
