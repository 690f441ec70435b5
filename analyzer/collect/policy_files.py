"""Inventory from files: `--policies-from PATH`, `kubectl get -o json|yaml` output and snapshots.

A file is parsed as JSON first (orjson: `kubectl get -o json` lists are common and PyYAML is slow
on them), else as YAML with libyaml's safe loader. The YAML loader warns about duplicate keys and
refuses documents whose aliases expand far beyond their size ("billion laughs").
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from analyzer.collect import schemas
from analyzer.collect.manifests import ROOT_NAMESPACE, Item, Notice, Unreadable, build_inventory
from analyzer.errors import UserError
from analyzer.model.inventory import Inventory

SUFFIXES = {".yaml", ".yml", ".json"}
# libyaml's safe loader when PyYAML was built with it: about ten times faster on big dumps.
SAFE_LOADER: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
# A document may expand (through aliases) to at most this many times its own nodes, plus a floor
# for small hand-written files: linear in the file's size, so memory and time stay bounded.
EXPANSION_RATIO = 10
EXPANSION_FLOOR = 100_000
MAX_NOTICES = 20  # duplicate-key warnings per file


class _TooLarge(Exception):
    pass


def _expanded_size(root: Node, limit: int) -> int:
    """Nodes the document would have with every alias copied out; stops at `limit`."""
    sizes: dict[int, int] = {}
    active: set[int] = set()

    def size(node: Node) -> int:
        key = id(node)
        if key in sizes:
            return sizes[key]
        if key in active:
            raise _TooLarge("an alias refers to a node that contains it")
        active.add(key)
        total = 1
        if isinstance(node, SequenceNode):
            children: list[Node] = node.value
        elif isinstance(node, MappingNode):
            children = [n for pair in node.value for n in pair]
        else:
            children = []
        for child in children:
            total += size(child)
            if total > limit:
                raise _TooLarge(f"its aliases expand to more than {limit:,} nodes")
        active.discard(key)
        sizes[key] = total
        return total

    return size(root)


def _unique_nodes(root: Node) -> int:
    seen: set[int] = set()
    stack = [root]
    while stack:
        node = stack.pop()
        if id(node) in seen:
            continue
        seen.add(id(node))
        if isinstance(node, SequenceNode):
            stack += node.value
        elif isinstance(node, MappingNode):
            stack += [n for pair in node.value for n in pair]
    return len(seen)


class BoundedLoader(SAFE_LOADER):
    """The safe loader, plus duplicate-key notices and a bound on alias expansion."""

    def __init__(self, stream: Any) -> None:
        super().__init__(stream)
        self.notices: list[str] = []
        # An alias needs an anchor: a stream without "&" cannot expand, so the walk is skipped.
        if isinstance(stream, bytes):
            self.anchored = b"&" in stream
        else:
            self.anchored = not isinstance(stream, str) or "&" in stream

    def construct_document(self, node: Node) -> Any:
        if not self.anchored:
            return super().construct_document(node)
        limit = EXPANSION_RATIO * _unique_nodes(node) + EXPANSION_FLOOR
        try:
            _expanded_size(node, limit)
        except RecursionError:
            raise _TooLarge("it is nested too deeply") from None
        return super().construct_document(node)

    def construct_mapping(self, node: MappingNode, deep: bool = False) -> Any:
        seen: set[tuple[str, str]] = set()
        for key_node, _ in node.value:
            if not isinstance(key_node, ScalarNode) or key_node.tag == "tag:yaml.org,2002:merge":
                continue
            key = (key_node.tag, key_node.value)
            if key in seen and len(self.notices) < MAX_NOTICES:
                self.notices.append(
                    f"line {key_node.start_mark.line + 1}: duplicate key {schemas.short(key_node.value)!r}, "
                    "the last value is used; remove the other"
                )
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


def _files(path: Path) -> list[Path]:
    if path.is_file():
        return [path]
    if path.is_dir():
        return sorted(p for p in path.rglob("*") if p.is_file() and p.suffix in SUFFIXES)
    raise UserError(f"--policies-from {path}: no such file or directory; give a YAML file, a folder of them, or 'kube'")


def _yaml_documents(file: Path, data: bytes) -> Iterator[tuple[Any, str]]:
    """(document or Unreadable/Notice, origin) of a YAML stream, one document at a time."""
    loader = BoundedLoader(data)
    index = 0
    try:
        while loader.check_node():
            index += 1
            origin = f"{file} (document {index})"
            try:
                document = loader.get_data()
            except _TooLarge as exc:
                yield Unreadable(f"refused: {exc}"), origin
                continue
            yield from ((Notice(text), origin) for text in loader.notices)
            loader.notices.clear()
            yield document, origin
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f"{file}:{mark.line + 1}" if mark else str(file)
        problem = (exc.problem or exc.context or "invalid YAML").strip()
        raise UserError(f"{where}: {problem}; fix the YAML or remove the file from --policies-from") from None
    except (yaml.YAMLError, RecursionError) as exc:
        raise UserError(f"{file}: cannot read ({type(exc).__name__}); fix or remove it") from None
    finally:
        loader.dispose()


def _documents(file: Path) -> Iterator[tuple[Any, str]]:
    try:
        data = file.read_bytes()
    except OSError as exc:
        raise UserError(f"{file}: cannot read ({exc.strerror}); fix or remove it") from None
    try:
        yield orjson.loads(data), f"{file} (document 1)"
        return
    except orjson.JSONDecodeError:
        pass  # not JSON (or JSON nested too deeply for orjson): YAML reads JSON too
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        raise UserError(f"{file}: not UTF-8 text; fix or remove it") from None
    yield from _yaml_documents(file, data)


def read_items(path: Path) -> Iterator[tuple[Item, str]]:
    """Every object in every document, flattening `kind: List`; unreadable documents and notices
    about the input come in their place, for build_inventory to report."""
    for file in _files(path):
        for doc, origin in _documents(file):
            if doc is None or isinstance(doc, Notice | Unreadable):
                if doc is not None:
                    yield doc, origin
                continue
            if not isinstance(doc, dict):
                yield Unreadable(f"the document is a {type(doc).__name__}, not a Kubernetes object"), origin
                continue
            kind = doc.get("kind")
            if isinstance(kind, str) and kind.endswith("List") and "items" in doc:
                items = doc["items"]
                if not isinstance(items, list):
                    yield Unreadable(f"{schemas.short(kind)}.items is not a list"), origin
                    continue
                for number, item in enumerate(items, start=1):
                    if isinstance(item, dict):
                        yield item, origin
                    else:
                        yield Unreadable(f"item {number} is a {type(item).__name__}, not an object"), origin
            else:
                yield doc, origin


def iter_objects(path: Path) -> Iterator[tuple[dict, str]]:
    """Objects only (for readers of proposals); an unreadable document comes as a kind-less object."""
    for item, origin in read_items(path):
        if isinstance(item, dict):
            yield item, origin
        elif isinstance(item, Unreadable):
            yield {"kind": None}, origin


def load_inventory(path: str | Path, *, cluster: str = "", root_namespace: str = ROOT_NAMESPACE) -> Inventory:
    return build_inventory(read_items(Path(path)), cluster=cluster, root_namespace=root_namespace)
