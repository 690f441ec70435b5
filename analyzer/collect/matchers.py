"""Label matchers added to every PromQL the job sends: --prometheus-selector and the namespace scope.

Added where the query text is sent (`PrometheusClient`), never where it is built, so a new query
gets them without knowing they exist. The rewrite is lexical: in PromQL, braces only ever hold a
vector selector's matchers, so each `{...}` outside a string gains the matchers, and a bare metric
name (`up`, not a function, keyword or grouping label) gains `{...}` after it.

- The selector (`cluster="prod"`) goes into every selector of every query and every `match[]`.
- The namespace scope (`destination_workload_namespace=~"..."`) goes only into selectors that name
  an Istio standard metric (`istio_*`), the ones carrying that label. A selector that names its
  metrics by regex (`{__name__=~"..."}`, the coverage check) keeps the whole cluster: how far back
  the data goes is a property of Prometheus, and a quiet namespace in scope says nothing about it.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence

_LABEL = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*")
_IDENT = re.compile(r"[a-zA-Z_][a-zA-Z0-9_:]*")
_OP = re.compile(r"=~|!~|!=|=")
_ESCAPE = re.compile(r"\\(?:[abfnrtv\\'\"]|x[0-9a-fA-F]{2}|u[0-9a-fA-F]{4}|U[0-9a-fA-F]{8}|[0-7]{3})")
# Words that are not metric names even when no `(` or `{` follows.
_KEYWORDS = {
    "and",
    "or",
    "unless",
    "by",
    "without",
    "on",
    "ignoring",
    "group_left",
    "group_right",
    "offset",
    "bool",
    "atan2",
    "inf",
    "nan",
    "start",
    "end",
    # aggregation operators: `sum by (x) (...)` puts a keyword, not `(`, after them
    "sum",
    "min",
    "max",
    "avg",
    "group",
    "stddev",
    "stdvar",
    "count",
    "count_values",
    "bottomk",
    "topk",
    "quantile",
    "limitk",
    "limit_ratio",
}
_GROUPING = {"by", "without", "on", "ignoring", "group_left", "group_right"}
# Labels the job's own scope owns: a selector on them would be a scope the mesh verdict cannot see.
_RESERVED = {
    "__name__": "it would replace the metric names the job queries",
    "destination_workload_namespace": "use --namespace / --exclude-namespace, which the verdicts take into account",
}
ISTIO_PREFIX = "istio_"
NAMESPACE_LABEL = "destination_workload_namespace"
# A namespace is a DNS label; a glob over namespaces uses those characters and *, ? and [...].
_GLOB = re.compile(r"(?:[a-z0-9.-]|\*|\?|\[!?[a-z0-9-]+\])+")


def _string_end(text: str, start: int) -> int:
    """Index just past the string literal opening at `start`; ValueError when it never closes."""
    quote = text[start]
    i = start + 1
    while i < len(text):
        char = text[i]
        if char == quote:
            return i + 1
        if char == "\\" and quote != "`":
            i += 2
            continue
        if char == "\n" and quote != "`":
            break
        i += 1
    raise ValueError(f"unterminated string {text[start:]!r}")


def _literal(text: str, start: int) -> int:
    """Index just past a valid PromQL string literal at `start` (Go escapes checked)."""
    if start >= len(text) or text[start] not in "\"'`":
        raise ValueError(f'expected a quoted value at {text[start:]!r} (e.g. cluster="prod")')
    end = _string_end(text, start)
    if text[start] != "`":
        body = text[start + 1 : end - 1]
        for match in re.finditer(r"\\.?", body):
            if not _ESCAPE.match(body, match.start()):
                raise ValueError(f"bad escape {match.group()!r} in {text[start:end]}")
    return end


def parse_selector(values: Iterable[str]) -> list[str]:
    """The matchers of --prometheus-selector (repeatable, comma-separated, braces optional), each
    as `name op "value"`; ValueError says what is wrong in one line."""
    matchers: list[str] = []
    for value in values:
        text = value.strip()
        if text.startswith("{") and text.endswith("}"):
            text = text[1:-1]
        i = 0
        while True:
            while i < len(text) and text[i] in " \t\n":
                i += 1
            if i >= len(text):
                break
            name = _LABEL.match(text, i)
            if not name:
                raise ValueError(f'{value!r}: expected a label name at {text[i:]!r} (e.g. cluster="prod")')
            if name.group() in _RESERVED:
                raise ValueError(f"{value!r}: a selector on {name.group()} is refused: {_RESERVED[name.group()]}")
            i = name.end()
            while i < len(text) and text[i] == " ":
                i += 1
            op = _OP.match(text, i)
            if not op:
                raise ValueError(f"{value!r}: expected =, !=, =~ or !~ after {name.group()}")
            i = op.end()
            while i < len(text) and text[i] == " ":
                i += 1
            try:
                end = _literal(text, i)
            except ValueError as exc:
                raise ValueError(f"{value!r}: {exc}") from None
            matchers.append(f"{name.group()}{op.group()}{text[i:end]}")
            i = end
            while i < len(text) and text[i] in " \t\n":
                i += 1
            if i < len(text):
                if text[i] != ",":
                    raise ValueError(f"{value!r}: expected a comma at {text[i:]!r}")
                i += 1
    return list(dict.fromkeys(matchers))


def check_glob(glob: str) -> str:
    """A namespace glob (fnmatch: *, ?, [...], [!...]) over DNS-label characters; ValueError if not."""
    if not _GLOB.fullmatch(glob):
        raise ValueError(
            f"{glob!r} is not a namespace glob: lowercase letters, digits and '-' with *, ? or [...] (e.g. 'team-*')"
        )
    return glob


def glob_regex(glob: str) -> str:
    """The RE2 regex (Prometheus anchors it) matching what fnmatch.fnmatchcase matches for `glob`."""
    out = []
    for token in re.findall(r"\[!?[a-z0-9-]+\]|.", check_glob(glob)):
        if token == "*":
            out.append(".*")
        elif token == "?":
            out.append(".")
        elif token.startswith("["):
            out.append("[^" + token[2:] if token.startswith("[!") else token)
        else:  # a letter, digit or '-' is itself; '.' is the only one RE2 reads otherwise
            out.append("\\." if token == "." else token)
    return "".join(out)


def _quote(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def namespace_matchers(include: Sequence[str], exclude: Sequence[str]) -> list[str]:
    """`destination_workload_namespace` matchers for the scope: one =~ for the globs included, one
    !~ for those excluded. Prometheus's regexes are anchored, like fnmatch."""
    matchers = []
    if include:
        matchers.append(f"{NAMESPACE_LABEL}=~{_quote('|'.join(glob_regex(g) for g in include))}")
    if exclude:
        matchers.append(f"{NAMESPACE_LABEL}!~{_quote('|'.join(glob_regex(g) for g in exclude))}")
    return matchers


def _skip_space(text: str, i: int) -> int:
    while i < len(text) and text[i].isspace():
        i += 1
    return i


def _close(text: str, i: int, opening: str, closing: str) -> int:
    """Index of the bracket closing the one at `i`, strings skipped."""
    depth = 0
    while i < len(text):
        char = text[i]
        if char in "\"'`":
            i = _string_end(text, i)
            continue
        if char == opening:
            depth += 1
        elif char == closing:
            depth -= 1
            if depth == 0:
                return i
        i += 1
    raise ValueError(f"unbalanced {opening!r} in {text!r}")


def _add(content: str, matchers: Sequence[str]) -> str:
    if not content.strip():
        return ", ".join(matchers)
    joiner = " " if content.rstrip().endswith(",") else ", "
    return content + joiner + ", ".join(matchers)


def _name_in(content: str) -> str:
    found = re.search(r"__name__\s*=\s*\"([^\"]*)\"", content)
    return found.group(1) if found else ""


def inject(promql: str, matchers: Sequence[str], istio_matchers: Sequence[str] = ()) -> str:
    """`promql` with `matchers` added to every vector selector, and `istio_matchers` to those
    that name an Istio metric. Raises ValueError on text it cannot read (unbalanced brackets)."""
    if not matchers and not istio_matchers:
        return promql

    def extra(name: str) -> list[str]:
        return [*matchers, *(istio_matchers if name.startswith(ISTIO_PREFIX) else ())]

    out: list[str] = []
    i, last_ident = 0, ""
    while i < len(promql):
        char = promql[i]
        if char in "\"'`":
            end = _string_end(promql, i)
            out.append(promql[i:end])
            i, last_ident = end, ""
        elif char == "#":
            end = promql.find("\n", i)
            end = len(promql) if end < 0 else end
            out.append(promql[i:end])
            i = end
        elif char == "{":
            end = _close(promql, i, "{", "}")
            content = promql[i + 1 : end]
            added = extra(last_ident or _name_in(content))
            out.append("{" + (_add(content, added) if added else content) + "}")
            i, last_ident = end + 1, ""
        elif char.isdigit() or (char == "." and promql[i + 1 : i + 2].isdigit()):
            match = re.compile(r"[0-9a-zA-Z_.]+(?:(?<=[eE])[-+][0-9]+)?").match(promql, i)
            assert match is not None
            out.append(match.group())
            i, last_ident = match.end(), ""
        elif _IDENT.match(promql, i):
            ident = _IDENT.match(promql, i)
            assert ident is not None
            word, i = ident.group(), ident.end()
            out.append(word)
            after = _skip_space(promql, i)
            following = promql[after : after + 1]
            if word.lower() in _GROUPING and following == "(":
                end = _close(promql, after, "(", ")")
                out.append(promql[i : end + 1])  # a list of label names, not selectors
                i, last_ident = end + 1, ""
            elif following == "{":
                last_ident = word
            elif following == "(" or word.lower() in _KEYWORDS:
                last_ident = ""
            else:
                added = extra(word)
                if added:
                    out.append("{" + ", ".join(added) + "}")
                last_ident = ""
        else:
            out.append(char)
            if not char.isspace():
                last_ident = ""
            i += 1
    return "".join(out)
