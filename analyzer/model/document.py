"""result.json: a RunResult as a JSON document, its JSON Schema, and the way back.

pydantic validates the stdlib dataclasses of `model.report` directly, so the dataclasses stay
the one definition of the shape.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import fields
from functools import cache
from typing import IO, Any, get_args, get_origin, get_type_hints

from pydantic import TypeAdapter

from analyzer.model.report import SCHEMA_VERSION, RunResult

# Long lists (edges, timeline points) are serialised this many items at a time: the document
# is written piece by piece, never held whole (44 MB, and twice that while pydantic built it,
# at 40,000 edges).
BATCH = 2000

# Derived by RunResult itself (never stale), written for readers that do not recompute it.
_DERIVED = {"complete": {"type": "boolean", "title": "Complete", "description": "exit code 0 (true) or 2 (false)"}}


@cache
def _adapter() -> TypeAdapter[RunResult]:
    return TypeAdapter(RunResult)


def to_document(run: RunResult) -> dict[str, Any]:
    """The JSON-ready dict of result.json."""
    document = _adapter().dump_python(run, mode="json")
    document["complete"] = run.complete
    return document


def to_json(run: RunResult) -> bytes:
    """result.json as compact UTF-8 (pydantic's serialiser: a second for 40,000 edges and 200,000 points)."""
    return b"".join(json_chunks(run))


def write_json(run: RunResult, out: IO[bytes]) -> None:
    """result.json written to `out` as it is serialised: the same bytes as `to_json`."""
    for chunk in json_chunks(run):
        out.write(chunk)


@cache
def _field_adapters() -> list[tuple[str, TypeAdapter[Any], TypeAdapter[Any] | None]]:
    """(name, adapter of the field, adapter of a list of its items when it is a list) per field."""
    hints = get_type_hints(RunResult)
    adapters: list[tuple[str, TypeAdapter[Any], TypeAdapter[Any] | None]] = []
    for f in fields(RunResult):
        hint = hints[f.name]
        items: TypeAdapter[Any] | None = None
        if get_origin(hint) is list:
            items = TypeAdapter(list[get_args(hint)[0]])  # type: ignore[arg-type,misc]
        adapters.append((f.name, TypeAdapter(hint), items))
    return adapters


def json_chunks(run: RunResult) -> Iterator[bytes]:
    """result.json in pieces, field by field in the dataclass's order (as pydantic writes the
    whole), long lists a batch at a time."""
    for index, (name, adapter, items) in enumerate(_field_adapters()):
        yield (b"{" if index == 0 else b",") + json.dumps(name).encode() + b":"
        value = getattr(run, name)
        if items is None or len(value) <= BATCH:
            yield adapter.dump_json(value)
            continue
        for start in range(0, len(value), BATCH):
            yield (b"[" if start == 0 else b",") + items.dump_json(value[start : start + BATCH])[1:-1]
        yield b"]"
    yield b',"complete":' + (b"true" if run.complete else b"false") + b"}\n"


def from_json(text: str | bytes) -> RunResult:
    """A RunResult from result.json; raises ValueError (pydantic's ValidationError) when it is not one."""
    run = _adapter().validate_json(text)
    if run.schema_version > SCHEMA_VERSION:
        raise ValueError(f"schema_version {run.schema_version} is newer than this version reads ({SCHEMA_VERSION})")
    return run


def schema() -> dict[str, Any]:
    """The JSON Schema of result.json (as written: timestamps are ISO 8601 strings)."""
    out = _adapter().json_schema(mode="serialization")
    out["properties"].update(_DERIVED)
    out["required"] = [*out.get("required", []), *_DERIVED]
    return {"$schema": "https://json-schema.org/draft/2020-12/schema", **out}
