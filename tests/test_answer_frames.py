"""Prometheus answers (already read strictly) as frames: the columns every later step reads."""

from __future__ import annotations

import orjson
import pandas as pd

from analyzer.collect.prometheus import matrix_frame, vector_frame
from analyzer.model.traffic import OBSERVATION_COLUMNS, TIMELINE_COLUMNS

EDGE = {
    "source_workload_namespace": "web",
    "source_workload": "frontend",
    "destination_workload_namespace": "shop",
    "destination_workload": "cart",
    "destination_service": "cart.shop.svc.cluster.local",
    "request_protocol": "http",
    "connection_security_policy": "none",
}


def test_a_vector_becomes_one_row_per_series_with_missing_labels_empty() -> None:
    answer = [
        {"metric": {**EDGE, "reporter": "destination"}, "value": [1.7e9, "12"]},
        {"metric": {**EDGE, "reporter": "waypoint", "source_principal": "spiffe://x"}, "value": [1.7e9, "0.5"]},
    ]
    answer = orjson.loads(orjson.dumps(answer))  # as parsed: one string object per value
    assert answer[0]["metric"]["destination_service"] is not answer[1]["metric"]["destination_service"]
    frame = vector_frame(answer)
    assert list(frame.columns) == OBSERVATION_COLUMNS
    assert frame["count"].tolist() == [12.0, 0.5] and frame["count"].dtype == "float64"
    assert frame["source_principal"].tolist() == ["", "spiffe://x"]  # absent label: ""
    assert frame["source_cluster"].tolist() == ["", ""]
    assert frame["reporter"].tolist() == ["destination", "waypoint"]
    assert frame["destination_namespace"].tolist() == ["shop", "shop"]
    # One string object per distinct value, not one per cell.
    assert frame.loc[0, "destination_service"] is frame.loc[1, "destination_service"]


def test_a_matrix_keeps_steps_above_zero_and_adds_up_reporters_per_step() -> None:
    answer = [
        {"metric": {**EDGE, "reporter": "destination"}, "values": [[1.7e9, "0"], [1.7e9 + 300, "3"]]},
        {"metric": {**EDGE, "reporter": "waypoint"}, "values": [[1.7e9 + 300, "2"], [1.7e9 + 600, "1"]]},
    ]
    frame = matrix_frame(answer)
    assert list(frame.columns) == TIMELINE_COLUMNS
    assert frame["timestamp"].tolist() == [
        pd.Timestamp(1.7e9 + 300, unit="s", tz="UTC"),
        pd.Timestamp(1.7e9 + 600, unit="s", tz="UTC"),
    ]
    assert frame["count"].tolist() == [5.0, 1.0]  # the zero step is gone; one edge, two reporters
    assert set(frame["destination_workload"]) == {"cart"}


def test_empty_answers_give_empty_frames_of_the_same_columns() -> None:
    assert list(vector_frame([]).columns) == OBSERVATION_COLUMNS and vector_frame([]).empty
    zeros = [{"metric": EDGE, "values": [[1.7e9, "0"]]}]
    assert list(matrix_frame(zeros).columns) == TIMELINE_COLUMNS and matrix_frame(zeros).empty
    assert str(matrix_frame(zeros)["timestamp"].dtype) == "datetime64[ns, UTC]"
