"""The colours, patterns and number format shared by the charts and the pages, without matplotlib."""

from __future__ import annotations

# Okabe-Ito: distinguishable with the common colour-vision deficiencies.
MTLS_COLOUR = "#0072B2"
PLAINTEXT_COLOUR = "#D55E00"
VERDICT_COLOURS = {
    "BLOCKED": "#D55E00",
    "UNKNOWN": "#F0E442",
    "READY": "#009E73",
    "NO_TRAFFIC": "#56B4E9",
    "DISABLED": "#E69F00",
    "ENFORCED": "#0072B2",
    "NOT_MESHED": "#BBBBBB",
}
# A second cue besides colour, so no two verdicts differ by colour alone (colour-vision deficiencies
# merge some of the palette): a hatch in the charts (lines only: dot hatches cost ~70 kB of SVG each)
# and a CSS pattern in the page's share bars. Only ENFORCED is plain.
VERDICT_HATCHES = {
    "BLOCKED": "//",
    "UNKNOWN": "\\\\",
    "READY": "++",
    "NO_TRAFFIC": "--",
    "DISABLED": "||",
    "NOT_MESHED": "xx",
}
_INK = "rgba(0,0,0,.3)"
VERDICT_PATTERNS = {
    "BLOCKED": f"repeating-linear-gradient(45deg, {_INK} 0 2px, transparent 2px 6px)",
    "UNKNOWN": f"repeating-linear-gradient(-45deg, {_INK} 0 2px, transparent 2px 6px)",
    "READY": "linear-gradient(90deg, rgba(255,255,255,.45) 1px, transparent 1px) 0 0 / 5px 5px, "
    "linear-gradient(rgba(255,255,255,.45) 1px, transparent 1px) 0 0 / 5px 5px",
    "NO_TRAFFIC": "repeating-linear-gradient(0deg, rgba(255,255,255,.55) 0 2px, transparent 2px 6px)",
    "DISABLED": f"repeating-linear-gradient(90deg, {_INK} 0 2px, transparent 2px 5px)",
    "NOT_MESHED": f"radial-gradient({_INK} 1px, transparent 1.5px) 0 0 / 5px 5px",
}
# Bottom to top in the burndown: what is done first, what blocks on top.
BURNDOWN_ORDER = ["ENFORCED", "READY", "NO_TRAFFIC", "DISABLED", "UNKNOWN", "BLOCKED", "NOT_MESHED"]


def compact(value: float) -> str:
    for size, suffix in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(value) >= size:
            return f"{value / size:.3g}{suffix}"
    return f"{value:.0f}" if float(value).is_integer() else f"{value:.3g}"
