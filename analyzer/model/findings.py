"""Blind spots of the telemetry and policy lint findings, as the RunResult carries them."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(slots=True)
class BlindSpot:
    """A place the metrics cannot see (docs/semantics.md, section 8).

    kind: excluded-ports, no-proxy-telemetry, telemetry-disabled, telemetry-filtered,
    telemetry-providers, host-network, headless-service, port-level-mtls or check-unavailable.
    `subject` is "ns/name", "Telemetry ns/name", "Service ns/name" or "mesh".
    `affects_verdict` is true when the workload's verdict could not rest on metrics (it is UNKNOWN)."""

    kind: str
    subject: str
    detail: str
    workloads: list[str] = field(default_factory=list)
    ports: list[int] = field(default_factory=list)
    affects_verdict: bool = False


@dataclass(slots=True)
class LintFinding:
    """A policy that does not do what it looks like, with the evidence from the window.

    rule: strict-receives-plaintext, strict-port-not-captured, destination-rule-disable,
    istio-mutual-to-sidecarless, ignored-policy."""

    rule: str
    policy: str  # "Kind ns/name" of the policy concerned, or the workload for strict-* rules
    detail: str
    evidence: list[str] = field(default_factory=list)
