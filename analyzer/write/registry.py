"""Writers by name: each a function of the RunResult and the run folder, nothing else."""

from __future__ import annotations

import importlib
from collections.abc import Callable
from pathlib import Path

from analyzer.model.report import RunResult

Writer = Callable[[RunResult, Path], None]
WRITERS: dict[str, Writer] = {}
# Modules that register writers, in writing order (the page links to the files written before it).
_MODULES = ("result_json", "summary", "tabular", "metrics", "html")


def writer(name: str) -> Callable[[Writer], Writer]:
    """Register `fn(run, folder)` as the writer called `name`."""

    def register(fn: Writer) -> Writer:
        if WRITERS.get(name, fn) is not fn:
            raise ValueError(f"two writers named {name!r}")
        WRITERS[name] = fn
        return fn

    return register


def writers() -> dict[str, Writer]:
    """Every registered writer by name; importing their modules registers them."""
    for module in _MODULES:
        importlib.import_module(f"analyzer.write.{module}")
    return dict(WRITERS)
