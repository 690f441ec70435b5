"""Istio security and traffic policies, reduced to the fields the analysis needs."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from datetime import datetime


class Mode(enum.StrEnum):
    """PeerAuthentication mTLS mode, as spelled in the Istio API."""

    UNSET = "UNSET"
    DISABLE = "DISABLE"
    PERMISSIVE = "PERMISSIVE"
    STRICT = "STRICT"


@dataclass(frozen=True, slots=True)
class PeerAuthentication:
    namespace: str
    name: str
    created: datetime
    selector: dict[str, str] = field(default_factory=dict)
    mode: Mode = Mode.UNSET
    port_modes: dict[int, Mode] = field(default_factory=dict)
    # True for a policy that only exists in a what-if or simulation, never in the cluster.
    hypothetical: bool = False

    @property
    def ref(self) -> str:
        return f"{self.namespace}/{self.name}"

    def matches(self, labels: dict[str, str]) -> bool:
        return all(labels.get(k) == v for k, v in self.selector.items())


@dataclass(frozen=True, slots=True)
class DestinationRule:
    """Client-side TLS settings; used to explain why a meshed client sends plaintext."""

    namespace: str
    name: str
    created: datetime
    host: str
    tls_mode: str | None = None
    port_tls_modes: dict[int, str | None] = field(default_factory=dict)
    workload_selector: dict[str, str] = field(default_factory=dict)
    export_to: tuple[str, ...] = ()

    @property
    def ref(self) -> str:
        return f"{self.namespace}/{self.name}"

    def disables_tls(self) -> bool:
        return self.tls_mode == "DISABLE" or "DISABLE" in self.port_tls_modes.values()
