"""bench/lut_sessions.py on hand-made records: sessions of the same candidates joined, and refused when not."""
from __future__ import annotations

import json
import math
import statistics
from pathlib import Path

import pytest


@pytest.fixture(scope="module")
def ls(bench_script):
    return bench_script("lut_sessions")


def record(tmp_path: Path, name: str, measured: list[float], predicted: list[float], rows: list[str] | None = None,
           config: str = "yolov8s", extra_cases: int = 0) -> str:
    rows = rows or [f"r{i}" for i in range(len(measured))]
    case = {"config": config, "imgsz": 320, "backend": "torch", "timing": "in_context",
            "anchor": {"at": "2026-12-07T15:10:45+00:00"},
            "points": [{"rows": r, "predicted_ms": p, "measured_ms": m} for r, p, m in zip(rows, predicted, measured)]}
    others = [{**case, "config": f"other{k}"} for k in range(extra_cases)]
    path = tmp_path / f"lut_accuracy_{name}.json"
    path.write_text(json.dumps({"loadavg_before": [0.5, 0.6, 0.7], "loadavg_after": [1.0, 1.0, 1.0],
                                "cases": [case, *others]}))
    return str(path)


KEY = {"config": None, "imgsz": None, "backend": None, "timing": None}


def test_a_session_at_another_level_agrees_wholly(ls, tmp_path: Path) -> None:
    pred = [10.0, 20.0, 30.0, 40.0]
    a = record(tmp_path, "a", [11.0, 22.0, 33.0, 44.0], pred)
    b = record(tmp_path, "b", [12.1, 24.2, 36.3, 48.4], pred)  # the same standings, 10% slower
    r = ls.sessions([a, b], KEY)
    (pair,) = r["pairs"]
    assert pair["level"] == pytest.approx(1.1)
    assert (pair["within_5"], pair["kendall_tau"], pair["sd_pct"]) == (1.0, 1.0, pytest.approx(0.0, abs=1e-9))
    assert [t["level"] for t in r["table"]] == [pytest.approx(1 / 1.1), pytest.approx(1 / 1.21)]  # predicted / it
    assert r["table_vs_all"]["level"] == pytest.approx(1 / 1.1)  # together: at the first session's level
    assert [t["kendall_tau"] for t in r["table"]] == [1.0, 1.0] and r["table"][0]["within_5"] == 1.0
    assert r["predictions_differ_by"] == 0.0


def test_sessions_that_disagree_are_measured_and_the_table_against_all(ls, tmp_path: Path) -> None:
    pred = [10.0, 20.0, 30.0, 40.0]
    a = record(tmp_path, "a", [10.0, 21.0, 29.0, 40.0], pred)
    b = record(tmp_path, "b", [10.0, 19.0, 31.0, 40.0], pred)
    r = ls.sessions([a, b], KEY)
    (pair,) = r["pairs"]
    assert pair["kendall_tau"] == 1.0 and pair["sd_pct"] > 0  # same order, per-candidate disagreement
    logs = [math.log(y / x) for x, y in zip([10.0, 21.0, 29.0, 40.0], [10.0, 19.0, 31.0, 40.0])]
    assert pair["sd_pct"] == pytest.approx(100 * statistics.pstdev(logs))
    together = r["table_vs_all"]
    assert together["level"] == pytest.approx(1.0, abs=1e-3)
    # the geometric means (10, 19.97, 29.98, 40) sit nearer the table than either session does
    assert together["sd_pct"] < min(t["sd_pct"] for t in r["table"])
    text = ls.report(r)
    assert "1: a" in text and "2: b" in text and "all sessions together" in text


def test_swapped_candidates_lower_tau(ls, tmp_path: Path) -> None:
    pred = [10.0, 20.0, 30.0]
    a = record(tmp_path, "a", [10.0, 20.0, 30.0], pred)
    b = record(tmp_path, "b", [20.0, 10.0, 30.0], pred)
    assert ls.sessions([a, b], KEY)["pairs"][0]["kendall_tau"] == pytest.approx(1 / 3)


def test_other_candidates_are_refused(ls, tmp_path: Path) -> None:
    pred = [10.0, 20.0]
    a = record(tmp_path, "a", [10.0, 20.0], pred)
    b = record(tmp_path, "b", [10.0, 20.0], pred, rows=["r0", "elsewhere"])
    c = record(tmp_path, "c", [10.0, 20.0, 30.0], pred + [30.0])
    with pytest.raises(SystemExit, match="not those of"):
        ls.sessions([a, b], KEY)
    with pytest.raises(SystemExit, match="not those of"):
        ls.sessions([a, c], KEY)


def test_a_record_of_several_cases_needs_the_case_named(ls, tmp_path: Path) -> None:
    pred = [10.0, 20.0]
    a = record(tmp_path, "a", [10.0, 20.0], pred, extra_cases=1)
    b = record(tmp_path, "b", [11.0, 22.0], pred, extra_cases=1)
    with pytest.raises(SystemExit, match="2 cases with points match"):
        ls.sessions([a, b], KEY)
    assert ls.sessions([a, b], {**KEY, "config": "yolov8s"})["pairs"][0]["level"] == pytest.approx(1.1)
    with pytest.raises(SystemExit, match="No such file|No such"):
        ls.sessions([a, str(tmp_path / "missing.json")], {**KEY, "config": "yolov8s"})
