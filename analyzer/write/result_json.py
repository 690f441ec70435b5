"""result.json: the whole typed result of the run; `python -m analyzer.write.result_json` prints its schema."""

from __future__ import annotations

import json
from pathlib import Path

from analyzer.model.document import schema, write_json
from analyzer.model.report import RunResult
from analyzer.write.registry import writer

RESULT_FILE = "result.json"


@writer("json")
def write_result(run: RunResult, folder: Path) -> None:
    with (folder / RESULT_FILE).open("wb") as out:
        write_json(run, out)


def schema_text() -> str:
    """docs/result.schema.json as committed."""
    return json.dumps(schema(), indent=2) + "\n"


if __name__ == "__main__":
    print(schema_text(), end="")
