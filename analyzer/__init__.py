"""mtls-readiness: find what blocks Istio STRICT mTLS, workload by workload.

The public Python API lives in `analyzer.api` and is re-exported here, loaded on first use so
that `import analyzer` (and the CLI's start-up) stays fast.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

__all__ = [
    "__version__",
    "analyse_live",
    "analyse_sample",
    "load_run",
    "plaintext_timeline",
    "plot_namespace_volume",
    "plot_plaintext_over_time",
    "plot_verdicts",
    "tables",
    "what_if",
]

if TYPE_CHECKING:
    from analyzer.api import (
        analyse_live,
        analyse_sample,
        load_run,
        plaintext_timeline,
        plot_namespace_volume,
        plot_plaintext_over_time,
        plot_verdicts,
        tables,
        what_if,
    )


def __getattr__(name: str) -> Any:
    if name in __all__ and name != "__version__":
        from analyzer import api

        return getattr(api, name)
    raise AttributeError(f"module 'analyzer' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
