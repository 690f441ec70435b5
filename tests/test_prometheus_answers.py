"""The strict answer reader and the totals/timeline cross-check: pure code, table-driven."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson
import pandas as pd
import pytest
import requests

from analyzer.collect.answers import QueryFailed, error_text, read_label_values, read_query
from analyzer.collect.crosscheck import contradictions
from analyzer.collect.prometheus import PrometheusClient, describe
from analyzer.config import PrometheusSettings
from analyzer.errors import UserError
from analyzer.model.traffic import EDGE_KEY, OBSERVATION_COLUMNS, TIMELINE_COLUMNS, empty_timeline

LABELS = {"destination_workload_namespace": "foo", "destination_workload": "httpbin"}


def answer(result: object, kind: str = "vector", **extra: object) -> bytes:
    return orjson.dumps({"status": "success", "data": {"resultType": kind, "result": result}, **extra})


def vector(value: object = "3") -> bytes:
    return answer([{"metric": LABELS, "value": [1700000000.0, value]}])


def matrix(*values: object) -> bytes:
    return answer([{"metric": LABELS, "values": [[1700000000 + 60 * i, v] for i, v in enumerate(values)]}], "matrix")


def test_a_good_vector_and_matrix_are_returned_as_sent() -> None:
    assert read_query(vector("2.5"), "vector") == [{"metric": LABELS, "value": [1700000000.0, "2.5"]}]
    assert read_query(matrix("1", "2"), "matrix")[0]["values"][1] == [1700000060, "2"]
    assert read_query(answer([]), "vector") == []


def test_a_complete_victoriametrics_answer_is_accepted() -> None:
    """VictoriaMetrics adds `isPartial: false` and `stats`; neither is a doubt."""
    stats = {"seriesFetched": "1", "executionTimeMsec": 2}
    assert (
        len(read_query(answer([{"metric": LABELS, "value": [1.0, "1"]}], isPartial=False, stats=stats), "vector")) == 1
    )


def test_harmless_promql_infos_are_accepted() -> None:
    info = "PromQL info: metric might not be a counter, name does not end in _total/_sum/_count/_bucket"
    assert len(read_query(vector("1")[:-1] + b',"infos":["' + info.encode() + b'"]}', "vector")) == 1


BAD = {
    "status error with 200": (orjson.dumps({"status": "error", "errorType": "bad_data", "error": "boom"}), "boom"),
    "status missing": (orjson.dumps({"data": {"resultType": "vector", "result": []}}), "status 'None'"),
    "thanos partial answer": (answer([], warnings=["No StoreAPIs matched for this query"]), "warnings"),
    "prometheus warning": (answer([], warnings=["PromQL warning: encountered a mix"]), "warnings"),
    "partial-response info": (answer([], infos=["partial response: store eu-1 unavailable"]), "infos"),
    "victoriametrics cluster partial answer": (answer([], isPartial=True), "isPartial: True"),
    "isPartial not a boolean": (answer([], isPartial="true"), "isPartial: 'true'"),
    "wrong resultType": (answer([], "matrix"), "resultType 'matrix', expected 'vector'"),
    "scalar result": (
        orjson.dumps({"status": "success", "data": {"resultType": "scalar", "result": [1, "1"]}}),
        "resultType",
    ),
    "string result": (
        orjson.dumps({"status": "success", "data": {"resultType": "string", "result": [1, "x"]}}),
        "resultType",
    ),
    "NaN": (vector("NaN"), "finite"),
    "+Inf": (vector("+Inf"), "finite"),
    "-Inf": (vector("-Inf"), "finite"),
    "not a number": (vector("abc"), "not a number"),
    "null value": (vector(None), "not a number"),
    "missing value": (answer([{"metric": LABELS}]), "has no value"),
    "value not a pair": (answer([{"metric": LABELS, "value": "3"}]), "not [timestamp, value]"),
    "labels not strings": (answer([{"metric": {"a": 1}, "value": [1, "1"]}]), "no readable labels"),
    "series not an object": (answer(["x"]), "not an object"),
    "result not a list": (answer({"a": 1}), "no result list"),
    "no data": (orjson.dumps({"status": "success"}), "no data"),
    "truncated body": (vector()[:-7], "not valid JSON"),
    "empty body": (b"", "not valid JSON"),
    "html body": (b"<html>bad gateway</html>", "not valid JSON"),
    "native histogram": (answer([{"metric": LABELS, "histogram": [1, {}]}]), "histograms"),
}


@pytest.mark.parametrize(("body", "why"), BAD.values(), ids=BAD.keys())
def test_an_answer_that_cannot_be_trusted_fails_the_query(body: bytes, why: str) -> None:
    with pytest.raises(QueryFailed, match=None) as failed:
        read_query(body, "vector")
    assert why in str(failed.value)
    assert len(str(failed.value)) < 300 and "\n" not in str(failed.value)


BAD_MATRIX = {
    "NaN in the middle": (matrix("1", "NaN", "3"), "finite"),
    "Inf timestamp": (
        answer([{"metric": LABELS, "values": [["+Inf", "1"]]}], "matrix"),
        "sample timestamp is '+Inf'",
    ),
    "missing values": (answer([{"metric": LABELS}], "matrix"), "has no values"),
    "empty values": (answer([{"metric": LABELS, "values": []}], "matrix"), "has no values"),
    "vector for a range": (vector(), "expected 'matrix'"),
    "short sample": (answer([{"metric": LABELS, "values": [[1]]}], "matrix"), "not [timestamp, value]"),
}


@pytest.mark.parametrize(("body", "why"), BAD_MATRIX.values(), ids=BAD_MATRIX.keys())
def test_a_range_answer_is_checked_sample_by_sample(body: bytes, why: str) -> None:
    with pytest.raises(QueryFailed) as failed:
        read_query(body, "matrix")
    assert why in str(failed.value)


def test_label_values_are_read_strictly() -> None:
    assert read_label_values(orjson.dumps({"status": "success", "data": ["foo", "bar"]})) == ["foo", "bar"]
    for body in (
        orjson.dumps({"status": "success", "data": ["foo", 1]}),
        orjson.dumps({"status": "success", "data": ["foo"], "warnings": ["partial"]}),
        orjson.dumps({"status": "success", "data": ["foo"], "isPartial": True}),
        orjson.dumps({"status": "error", "error": "x"}),
    ):
        with pytest.raises(QueryFailed):
            read_label_values(body)


def test_error_text_is_prometheus_error_field_cut_short() -> None:
    body = orjson.dumps({"status": "error", "errorType": "execution", "error": "query processing would load " * 40})
    text = error_text(body)
    assert text.startswith("query processing would load") and len(text) <= 200
    assert error_text(b"upstream\nconnect error " + b"x" * 500).startswith("upstream connect error")
    assert len(error_text(b"x" * 5000)) <= 200


@pytest.mark.parametrize(
    ("exc", "said"),
    [
        (requests.exceptions.ReadTimeout("HTTPConnectionPool(host='h', port=1): Read timed out."), "read timed out"),
        (requests.exceptions.ConnectTimeout("connect"), "connect timed out after 120s"),
        (requests.exceptions.ConnectionError("[Errno 111] Connection refused"), "connection refused"),
        (requests.exceptions.ConnectionError("Connection aborted. RemoteDisconnected"), "closed by the server"),
        (requests.exceptions.ChunkedEncodingError("IncompleteRead(10 bytes read)"), "cut off"),
    ],
)
def test_failed_requests_are_named_by_their_real_cause(exc: Exception, said: str) -> None:
    text = describe(exc, 120.0)  # type: ignore[arg-type]
    assert said in text
    assert "http" not in text.lower() and "host=" not in text


def test_url_basic_auth_with_a_bearer_token_file_is_a_usage_error(tmp_path: Path) -> None:
    token = tmp_path / "token"
    token.write_text("secret-token\n", encoding="utf-8")
    settings = PrometheusSettings(url="http://user:hunter2@127.0.0.1:9", bearer_token_file=token)
    with pytest.raises(UserError) as refused:
        PrometheusClient(settings)
    text = str(refused.value)
    assert "--prometheus-bearer-token-file" in text and "hunter2" not in text and "secret-token" not in text


# -- cross-check --------------------------------------------------------------------------------

START = datetime(2026, 1, 1, tzinfo=UTC)


def edge(source: str, dest: str = "foo/httpbin", policy: str = "none") -> dict[str, str]:
    sns, swl = source.split("/")
    dns, dwl = dest.split("/")
    row = dict.fromkeys(EDGE_KEY, "")
    row.update(source_namespace=sns, source_workload=swl, destination_namespace=dns, destination_workload=dwl)
    row.update(protocol="http", connection_security_policy=policy)
    return row


def totals(*rows: tuple[dict[str, str], float]) -> pd.DataFrame:
    frame = pd.DataFrame([{**r, "reporter": "destination", "count": c} for r, c in rows])
    return frame.reindex(columns=OBSERVATION_COLUMNS)


def timeline(*rows: tuple[dict[str, str], timedelta, float]) -> pd.DataFrame:
    if not rows:
        return empty_timeline()
    frame = pd.DataFrame([{**r, "timestamp": pd.Timestamp(START + at), "count": c} for r, at, c in rows])
    return frame.reindex(columns=TIMELINE_COLUMNS)


HOUR = timedelta(hours=1)


def test_the_same_edges_in_different_amounts_agree() -> None:
    legacy, mtls = edge("legacy/curl"), edge("bar/curl", policy="mutual_tls")
    assert contradictions(totals((legacy, 240.0), (mtls, 50.0)), timeline((legacy, HOUR, 3.2)), START) == {}


def test_a_plaintext_edge_missing_from_the_totals_is_a_contradiction() -> None:
    both = (edge("bar/curl"), 5.0)
    found = contradictions(totals(both), timeline((edge("legacy/curl"), 2 * HOUR, 1.0), (both[0], HOUR, 2.0)), START)
    [reason] = found[("foo", "httpbin")]
    assert "legacy/curl -> foo/httpbin" in reason and "in the timeline but none in the window totals" in reason


def test_a_plaintext_edge_missing_from_the_timeline_is_a_contradiction() -> None:
    found = contradictions(totals((edge("legacy/curl", "bar/httpbin"), 12.0)), timeline(), START)
    assert list(found) == [("bar", "httpbin")]


def test_legitimate_differences_are_not_contradictions() -> None:
    legacy = edge("legacy/curl")
    # mTLS edges are not in the timeline; zero totals are no volume.
    assert contradictions(totals((edge("bar/curl", policy="mutual_tls"), 9.0), (legacy, 0.0)), timeline(), START) == {}
    # The timeline's first point reaches one step before the window.
    assert contradictions(totals(), timeline((legacy, timedelta(0), 4.0)), START) == {}
    # A timeline stopping short of the window's end may miss the totals' last edge.
    assert contradictions(totals((legacy, 1.0)), timeline(), START, covers_end=False) == {}
    # Namespaces already in doubt are not reported twice.
    assert contradictions(totals((legacy, 1.0)), timeline(), START, skip_namespaces={"foo"}) == {}
