"""The matchers added to every query (collect/matchers.py): table-driven, one named case per rule."""

from __future__ import annotations

from datetime import timedelta
from fnmatch import fnmatchcase

import pytest

from analyzer.collect import matchers, plan, queries

SEL = ['cluster="prod"']
NS = ['destination_workload_namespace=~"team-.*"']

INJECT_CASES = {
    "selector braces gain the matcher": ('up{job="a"}', 'up{job="a", cluster="prod"}'),
    "empty braces": ("up{}", 'up{cluster="prod"}'),
    "trailing comma kept valid": ('up{job="a",}', 'up{job="a", cluster="prod"}'),
    "bare metric name gains braces": ("up", 'up{cluster="prod"}'),
    "bare metric in a range": ("rate(up[5m])", 'rate(up{cluster="prod"}[5m])'),
    "function names are not metrics": ("vector(1)", "vector(1)"),
    "aggregation with by: labels untouched": (
        "sum by (job, instance) (up)",
        'sum by (job, instance) (up{cluster="prod"})',
    ),
    "aggregation with by after the body": ("sum(up) by (job)", 'sum(up{cluster="prod"}) by (job)'),
    "without list untouched": ("count without(job) (up)", 'count without(job) (up{cluster="prod"})'),
    "on and group_left lists untouched": (
        "a / on(job) group_left(x) b",
        'a{cluster="prod"} / on(job) group_left(x) b{cluster="prod"}',
    ),
    "keywords are not metrics": (
        "a and b or c unless d",
        'a{cluster="prod"} and b{cluster="prod"} or c{cluster="prod"} unless d{cluster="prod"}',
    ),
    "bool, numbers and inf untouched": ("up > bool 1e-3 and inf", 'up{cluster="prod"} > bool 1e-3 and inf'),
    "offset durations untouched": ("up offset 1h30m", 'up{cluster="prod"} offset 1h30m'),
    "subquery steps untouched": ("max_over_time(up[1h:5m])", 'max_over_time(up{cluster="prod"}[1h:5m])'),
    "braces inside strings are not selectors": ('up{a="}{"}', 'up{a="}{", cluster="prod"}'),
    "label names in string arguments untouched": (
        'label_replace(up, "dst", "$1", "src", "(.*)")',
        'label_replace(up{cluster="prod"}, "dst", "$1", "src", "(.*)")',
    ),
    "name-only selector": ('{__name__="up"}', '{__name__="up", cluster="prod"}'),
    "recording-rule names with colons": ("job:up:sum", 'job:up:sum{cluster="prod"}'),
}


@pytest.mark.parametrize("promql, expected", INJECT_CASES.values(), ids=INJECT_CASES.keys())
def test_inject_selector(promql, expected):
    assert matchers.inject(promql, SEL) == expected


SCOPE_CASES = {
    "an Istio metric gets the scope": (
        'istio_requests_total{reporter="destination"}',
        'istio_requests_total{reporter="destination", cluster="prod", destination_workload_namespace=~"team-.*"}',
    ),
    "a bare Istio metric too": (
        "istio_tcp_connections_opened_total",
        'istio_tcp_connections_opened_total{cluster="prod", destination_workload_namespace=~"team-.*"}',
    ),
    "an Istio metric named by __name__ equality": (
        '{__name__="istio_requests_total"}',
        '{__name__="istio_requests_total", cluster="prod", destination_workload_namespace=~"team-.*"}',
    ),
    "names by regex (the coverage check) keep the whole cluster": (
        '{__name__=~"istio_requests_total|istio_tcp_connections_opened_total"}',
        '{__name__=~"istio_requests_total|istio_tcp_connections_opened_total", cluster="prod"}',
    ),
    "other metrics lack the label: selector only": ("envoy_server_live", 'envoy_server_live{cluster="prod"}'),
}


@pytest.mark.parametrize("promql, expected", SCOPE_CASES.values(), ids=SCOPE_CASES.keys())
def test_inject_scope(promql, expected):
    assert matchers.inject(promql, SEL, NS) == expected


def test_nothing_to_add_leaves_the_text_alone():
    assert matchers.inject("sum(up)", [], []) == "sum(up)"


def test_every_query_the_job_builds_gets_the_selector_in_every_selector():
    window = timedelta(days=7)
    texts = [job.query.promql() for job in plan.jobs(window)]
    texts += [queries.DataPresence(timedelta(hours=1)).promql(), queries.DataExtent().promql()]
    for text in texts:
        out = matchers.inject(text, SEL, NS)
        assert out.count("{") == text.count("{") and out.count('cluster="prod"') == text.count("{"), out
        if "__name__=~" not in text:
            assert out.count("destination_workload_namespace=~") == text.count("{"), out


def test_unbalanced_text_is_refused():
    with pytest.raises(ValueError):
        matchers.inject('up{job="a"', SEL)


SELECTOR_OK = {
    "one matcher": (['cluster="prod"'], ['cluster="prod"']),
    "comma-separated, spaces": (['cluster="prod", region=~"eu-.*"'], ['cluster="prod"', 'region=~"eu-.*"']),
    "repeated flags": (['cluster="prod"', 'env!="dev"'], ['cluster="prod"', 'env!="dev"']),
    "braces allowed": (['{cluster="prod"}'], ['cluster="prod"']),
    "single quotes and escapes": (["team='a\\'b'"], ["team='a\\'b'"]),
    "backquoted raw string": (["re!~`a\\d+`"], ["re!~`a\\d+`"]),
    "a comma inside a value": (['x="a,b"'], ['x="a,b"']),
    "duplicates once": (['a="1"', 'a="1"'], ['a="1"']),
}


@pytest.mark.parametrize("given, expected", SELECTOR_OK.values(), ids=SELECTOR_OK.keys())
def test_parse_selector(given, expected):
    assert matchers.parse_selector(given) == expected


SELECTOR_BAD = {
    "no operator": "cluster",
    "unquoted value": "cluster=prod",
    "unterminated string": 'cluster="prod',
    "bad escape": 'cluster="a\\q"',
    "label starting with a digit": '1cluster="a"',
    "two matchers without a comma": 'a="1" b="2"',
    "double-equals operator": 'a=="1"',
    "metric name matcher refused": '__name__="up"',
    "the scope's own label refused": 'destination_workload_namespace="a"',
}


@pytest.mark.parametrize("given", SELECTOR_BAD.values(), ids=SELECTOR_BAD.keys())
def test_parse_selector_refuses(given):
    with pytest.raises(ValueError) as error:
        matchers.parse_selector([given])
    assert "\n" not in str(error.value)


NAMESPACES = ["team-a", "team-b", "team-ab", "team", "prod", "prod-1", "prod-x", "a.b", "axb", "istio-system"]
GLOBS = ["team-*", "team-?", "prod-[0-9]", "prod-[!0-9]", "a.b", "*system", "prod", "*"]


@pytest.mark.parametrize("glob", GLOBS)
def test_glob_regex_matches_what_fnmatch_matches(glob):
    import re

    pattern = re.compile(matchers.glob_regex(glob))  # RE2 and Python agree on this small syntax
    assert [n for n in NAMESPACES if pattern.fullmatch(n)] == [n for n in NAMESPACES if fnmatchcase(n, glob)]


@pytest.mark.parametrize("glob", ["Team", "a/b", "[]", "team-[", "a,b", "", "x{1}"])
def test_bad_globs_are_refused(glob):
    with pytest.raises(ValueError):
        matchers.check_glob(glob)


def test_namespace_matchers_include_and_exclude():
    assert matchers.namespace_matchers(["team-*", "prod"], ["team-old"]) == [
        'destination_workload_namespace=~"team-.*|prod"',
        'destination_workload_namespace!~"team-old"',
    ]
    assert matchers.namespace_matchers([], []) == []


def test_the_notebook_api_checks_the_selector_as_the_cli_does():
    from analyzer import api
    from analyzer.errors import UserError

    config = api._live_config("http://127.0.0.1:9", {"selector": 'cluster="prod", env!="dev"'})
    assert config.prometheus is not None and config.prometheus.selector == ('cluster="prod"', 'env!="dev"')
    with pytest.raises(UserError, match="selector"):
        api._live_config("http://127.0.0.1:9", {"selector": "cluster=prod"})
