"""Decide, per server-side observation, whether it was mTLS, plaintext or unreadable.

docs/semantics.md, section 4: a sidecar server reports `mutual_tls` or `none`; ztunnel (an
ambient server) reports `mutual_tls` or `unknown`, where `unknown` is plaintext. Anything else
(a label dropped by the Telemetry API, `unknown` from a sidecar) cannot be read and must never
be taken as mTLS.
"""

from __future__ import annotations

import pandas as pd

from analyzer.model.inventory import Dataplane, Inventory

MTLS = "mtls"
PLAINTEXT = "plaintext"
UNREADABLE = "unreadable"


def classify(observations: pd.DataFrame, inventory: Inventory) -> pd.DataFrame:
    """Adds a `security` column (mtls, plaintext, unreadable)."""
    frame = observations.copy()
    if frame.empty:
        frame["security"] = pd.Series(dtype="object")
        return frame
    ambient = {key for key, w in inventory.workloads.items() if w.dataplane is Dataplane.AMBIENT}
    # Vectorised: a Python loop over every row showed in profiles of 40,000-edge runs.
    destinations = pd.MultiIndex.from_arrays([frame["destination_namespace"], frame["destination_workload"]])
    dest_ambient = destinations.isin(list(ambient)) if ambient else [False] * len(frame)
    csp = frame["connection_security_policy"]
    # Only ztunnel's inbound view reads "unknown" as plaintext; a client's own series (reporter
    # "source") always says "unknown". Rows without a reporter (the timeline) are server side.
    inbound = frame["reporter"] == "destination" if "reporter" in frame.columns else True
    security = pd.Series(UNREADABLE, index=frame.index, dtype="object")
    security[csp == "mutual_tls"] = MTLS
    security[csp == "none"] = PLAINTEXT
    security[(csp == "unknown") & pd.Series(dest_ambient, index=frame.index) & inbound] = PLAINTEXT
    frame["security"] = security
    return frame
