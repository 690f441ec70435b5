"""result.json: a RunResult as a JSON document, its JSON Schema, and the way back.

pydantic validates the stdlib dataclasses of `model.report` directly, so the dataclasses stay
the one definition of the shape.
"""

from __future__ import annotations

from functools import cache
from typing import Any

from pydantic import TypeAdapter

from analyzer.model.report import SCHEMA_VERSION, RunResult

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
    body = _adapter().dump_json(run)
    return body[:-1] + b',"complete":' + (b"true" if run.complete else b"false") + b"}\n"


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
