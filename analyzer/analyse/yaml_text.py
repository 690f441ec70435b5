"""Block YAML for the small documents the report suggests (PeerAuthentications, AuthorizationPolicies).

PyYAML's representer costs ~0.2 ms a document in Python, and a 40,000-edge mesh suggests one per
workload. These documents hold only mappings, lists and strings (and the odd int), so they are
written here in PyYAML's own layout. Label values come from the cluster and may be hostile: a
scalar is written plain only when it is a harmless word, otherwise double-quoted with every
non-ASCII or control character escaped, so no value can add structure or hide text (bidi
controls) in a file someone applies.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from functools import lru_cache

# Plain only: starts with a letter, then letters, digits and . _ / - (no ": ", "#", quotes, or
# leading indicator), and not a word YAML 1.1 reads as a bool or null.
_PLAIN = re.compile(r"[A-Za-z][A-Za-z0-9._/-]*\Z")
_RESERVED = {"y", "n", "yes", "no", "on", "off", "true", "false", "null"}


def scalar(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    return _text(str(value))


@lru_cache(maxsize=1 << 16)
def _text(text: str) -> str:
    """Keys, kinds, namespaces and principals recur in every suggested document: each is judged once."""
    if _PLAIN.match(text) and text.lower() not in _RESERVED:
        return text
    return _quoted(text)


def _quoted(text: str) -> str:
    """A YAML double-quoted scalar in ASCII: printable ASCII as is, everything else escaped."""
    out = []
    for c in text:
        code = ord(c)
        if c in '"\\':
            out.append("\\" + c)
        elif 0x20 <= code < 0x7F:
            out.append(c)
        elif code <= 0xFF:
            out.append(f"\\x{code:02x}")
        elif code <= 0xFFFF:
            out.append(f"\\u{code:04x}")
        else:
            out.append(f"\\U{code:08x}")
    return '"' + "".join(out) + '"'


def dump(document: Mapping[str, object]) -> str:
    """The document as PyYAML's `dump(..., sort_keys=False)` lays it out: block style, lists not
    indented under their key."""
    lines: list[str] = []
    _mapping(document, 0, lines)
    return "\n".join(lines) + "\n"


def _mapping(node: Mapping[str, object], indent: int, lines: list[str], first_prefix: str = "") -> None:
    pad = " " * indent
    if not node:
        lines.append(f"{first_prefix or pad}{{}}")
        return
    for i, (key, value) in enumerate(node.items()):
        lead = first_prefix if i == 0 and first_prefix else pad
        _entry(f"{lead}{scalar(key)}:", value, indent, lines)


def _entry(head: str, value: object, indent: int, lines: list[str]) -> None:
    if isinstance(value, Mapping):
        if not value:
            lines.append(f"{head} {{}}")
            return
        lines.append(head)
        _mapping(value, indent + 2, lines)
    elif isinstance(value, Sequence) and not isinstance(value, str):
        if not value:
            lines.append(f"{head} []")
            return
        lines.append(head)
        _sequence(value, indent, lines)
    else:
        lines.append(f"{head} {scalar(value)}")


def _sequence(items: Sequence[object], indent: int, lines: list[str]) -> None:
    pad = " " * indent
    for item in items:
        if isinstance(item, Mapping) and item:
            _mapping(item, indent + 2, lines, first_prefix=f"{pad}- ")
        elif isinstance(item, Sequence) and not isinstance(item, str) and item:
            lines.append(f"{pad}-")
            _sequence(item, indent + 2, lines)
        elif isinstance(item, Mapping):
            lines.append(f"{pad}- {{}}")
        elif isinstance(item, Sequence) and not isinstance(item, str):
            lines.append(f"{pad}- []")
        else:
            lines.append(f"{pad}- {scalar(item)}")
