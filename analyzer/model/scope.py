"""What a run looked at: the Prometheus selector and the namespaces in scope (--namespace globs)."""

from __future__ import annotations

from dataclasses import dataclass, field
from fnmatch import fnmatchcase


@dataclass(slots=True)
class Scope:
    """The part of the mesh a run judged. Unlimited (the default) is the whole mesh the selected
    Prometheus data and the inventory show; limited runs report only the namespaces in scope, and
    their mesh verdict cannot be READY (docs/contract.md, "Scope")."""

    namespaces: list[str] = field(default_factory=list)  # globs included; empty: every namespace
    exclude_namespaces: list[str] = field(default_factory=list)  # globs left out
    prometheus_selector: list[str] = field(default_factory=list)  # matchers added to every query
    namespaces_in_scope: list[str] = field(default_factory=list)  # known namespaces reported
    namespaces_left_out: list[str] = field(default_factory=list)  # known namespaces outside the scope
    # The verdict over the namespaces in scope, judged like the mesh's; "" when the scope is unlimited.
    verdict: str = ""

    @property
    def limited(self) -> bool:
        return bool(self.namespaces or self.exclude_namespaces)

    def includes(self, namespace: str) -> bool:
        """fnmatch globs, case-sensitive (namespaces are lowercase): included and not excluded."""
        if self.namespaces and not any(fnmatchcase(namespace, g) for g in self.namespaces):
            return False
        return not any(fnmatchcase(namespace, g) for g in self.exclude_namespaces)

    def describe(self) -> str:
        """One line for logs, the page and reasons: what was in scope."""
        parts = []
        if self.namespaces:
            parts.append("namespaces " + ", ".join(self.namespaces))
        if self.exclude_namespaces:
            parts.append("excluding " + ", ".join(self.exclude_namespaces))
        if self.prometheus_selector:
            parts.append("Prometheus series matching {" + ", ".join(self.prometheus_selector) + "}")
        return "; ".join(parts) or "the whole mesh"
