"""The validity benchmark's metrics (bench/objective_validity.py) on hand-made points."""
from __future__ import annotations

import pytest


@pytest.fixture(scope="module")
def ov(bench_script):
    return bench_script("objective_validity")


def pts(ov, *specs, size=320):
    """(model, latency s, mAP points, objective value) -> Points with one objective 'x'."""
    return [ov.Point(m, "yolo5", size, mp, {"dev": lat}, {"x": (1, val)}, {}) for m, lat, mp, val in specs]


def test_regret_under_every_budget(ov) -> None:
    p = pts(ov, ("a", 1.0, 10.0, 5.0), ("b", 2.0, 20.0, 1.0), ("c", 3.0, 15.0, 9.0))
    assert ov.regrets(p, "x", "dev") == [0.0, 10.0, 5.0]  # budget 2: picks a (5 > 1), best b
    assert ov.regrets(p, None, "dev") == [0.0, 5.0, 5.0]  # random: best minus the mean under the budget


def test_ties_count_as_their_mean_and_infeasible_last(ov) -> None:
    p = pts(ov, ("a", 1.0, 10.0, 5.0), ("b", 1.0, 20.0, 5.0))
    assert ov.regrets(p, "x", "dev") == [5.0]
    p[1] = ov.Point("b", "yolo5", 320, 20.0, {"dev": 1.0}, {"x": (0, 99.0)}, {})  # infeasible, larger value
    assert ov.regrets(p, "x", "dev") == [10.0]


def test_pairwise_accuracy_only_near_latency_pairs(ov) -> None:
    p = pts(ov, ("a", 1.00, 10.0, 1.0), ("b", 1.05, 12.0, 2.0), ("c", 1.09, 11.0, 2.0), ("d", 5.0, 0.0, 9.0))
    # pairs within 10%: a-b right, a-c right, b-c tie (1/2); d is near nobody
    got = ov.pairwise_accuracy(p, "x", "dev", same_size=True)
    assert got == {"accuracy": pytest.approx(2.5 / 3), "pairs": 3}


def test_correlations_per_size(ov) -> None:
    p = pts(ov, ("a", 1, 10.0, 1.0), ("b", 2, 20.0, 2.0), ("c", 3, 30.0, 3.0)) + \
        pts(ov, ("a", 1, 10.0, 3.0), ("b", 2, 20.0, 2.0), ("c", 3, 30.0, 1.0), size=480)
    got = ov.correlations(p, "x")
    assert (got["kendall"], got["spearman"], got["sizes"]) == (pytest.approx(0.0), pytest.approx(0.0), 2)


def test_scalar_ranks_keep_ties_and_feasibility(ov) -> None:
    assert ov.scalar_ranks([(1, 2.0), (0, 9.0), (1, 2.0), (1, 3.0)]) == [1.0, 0.0, 1.0, 2.0]


def test_one_table_with_every_objective_per_group(ov) -> None:
    """analyse + table on hand-made points of every family: one row per group and objective, random included."""
    devices = ("nano_gpu_latency", "openvino_latency", "raspi4_tflite_latency")
    points = []
    for fam in ("yolo3", "yolo5", "yolo8"):
        for size in (160, 320):
            for m, lat, mp, val in (("a", 1.0, 10.0, 1.0), ("b", 2.0, 20.0, 3.0), ("c", 3.0, 30.0, 2.0)):
                points.append(ov.Point(f"{fam}{m}", fam, size, mp, {d: lat * size for d in devices},
                                       {"x": (1, val), "y": (1, -val)}, {}))
    result = ov.analyse(points, ["x", "y"], devices)
    assert list(result) == list(ov.GROUPS) and result["pooled"]["models"] == 9
    x = result["yolo5"]["objectives"]["x"]
    assert x["kendall"] == pytest.approx(1 / 3)  # (a, b, c) valued (1, 3, 2): 2 concordant pairs, 1 discordant
    assert x["regret"]["openvino_latency"]["one_size"] == pytest.approx(10 / 3)  # budgets 1, 2, 3: 0, 0, 10
    lines = ov.table(result, devices).splitlines()
    assert lines[0].split(" | ")[:4] == ["| group", "objective", "Kendall", "Spearman"]
    assert lines[0].split(" | ")[4:9] == ["pair acc openvino", "pair acc raspi4", "regret openvino", "regret raspi4",
                                          "regret nano_gpu"]  # the key devices first
    body = [ln.split(" | ") for ln in lines[2:]]
    assert len(body) == len(ov.GROUPS) * 3  # x, y and random in each group
    assert {(r[0].lstrip("| "), r[1]) for r in body} == {(f"{g} ({result[g]['models']})", o)
                                                         for g in ov.GROUPS for o in ("x", "y", "random")}
    row = next(r for r in body if r[0] == "| yolo5 (3)" and r[1] == "x")
    assert row[2] == "0.333" and row[6] == "3.333 / " + f"{x['regret']['openvino_latency']['size_choice']:.3f}"
