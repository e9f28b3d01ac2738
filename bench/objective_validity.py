"""How well does each registered objective predict trained accuracy? YOLOBench's stored results say.

For every YOLOBench model zoo can build (bench/yolobench.py: 25 of the 52; the rows are asserted
against the data README's rule) and each of its 11 resolutions, every objective of search.objectives is
computed from the architecture alone and compared with the trained mAP_0.5:0.95, per family (yolo3,
yolo5, yolo8), for yolo5+yolo8 and pooled:
- Kendall tau and Spearman rho within each resolution (scipy.stats), averaged over the resolutions;
- pairwise accuracy: over pairs whose latency on a device is within 10% (max/min <= 1.1), the share the
  objective orders as mAP does (objective ties count one half), pairs at one resolution and across;
- regret: for every distinct latency of a device column as a budget, the best mAP under the budget minus
  the mAP of the objective's pick (ties: their mean), in mAP points, averaged over budgets; at one
  resolution (averaged over the 11) and with the resolution as a choice. The random baseline is the
  expected regret of a uniform pick under the budget (exact, no sampling).
Latencies are the data's stored ones, so machine load does not matter. Writes
bench/results/objective_validity.{json,md}. Usage: python bench/objective_validity.py [--cache FILE]
"""
from __future__ import annotations

import argparse
import json
import math
import statistics
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).parent))

from scipy import stats  # noqa: E402

import yolobench as yb  # noqa: E402
from search.objectives import (BaseSummary, ObjectiveContext, ObjectiveValue, depth_budget,  # noqa: E402
                               get_objective, objective_names, rank_key, summarize)
from _rowterms_adapter import at_size, model_rows  # noqa: E402  (TEMPORARY: until candidate_rows lands)

GROUPS = {"yolo3": ("yolo3",), "yolo5": ("yolo5",), "yolo8": ("yolo8",), "yolo5+yolo8": ("yolo5", "yolo8"),
          "pooled": ("yolo3", "yolo5", "yolo8")}
NEAR = 1.10  # pairs whose latencies are within 10%
KEY_DEVICES = ("openvino_latency", "raspi4_tflite_latency")




def collect(variants: Sequence[yb.Variant], sizes: Sequence[int], cache: Path | None) -> dict[str, Any]:
    """Build and check every variant, then its rows at the smallest size (cached in `cache` if given)."""
    stored: dict[str, Any] = json.loads(cache.read_text()) if cache and cache.is_file() else {}
    counted, check = min(sizes), max(sizes)
    checked: set[str] = set()
    for v in variants:
        if v.name in stored and stored[v.name]["counted"] == counted:
            continue
        t = time.time()
        model = yb.build(v)
        yb.check_rows(v, model)
        if v.version == "yolo3":
            yb.check_yolo3_bottlenecks(v, model)
        rows = model_rows(model, counted)
        if v.version not in checked:  # the scaling assumption, once per layout, recounted at the largest size
            big = model_rows(model, check)
            want = at_size(rows, counted, check)
            assert [r["macs"] for r in big] == [t.cost.macs for t in want], f"{v.name}: MACs do not scale"
            assert [tuple(r["out_hw"]) if r["out_hw"] else None for r in big] == [t.out_hw for t in want]
            checked.add(v.version)
        stored[v.name] = {"counted": counted, "rows": rows}
        print(f"  {v.name}: {len(rows)} rows checked, {time.time() - t:.1f}s", file=sys.stderr, flush=True)
        if cache:
            cache.write_text(json.dumps(stored))
    return stored


@dataclass(frozen=True)
class Point:
    model: str
    family: str
    imgsz: int
    map_pts: float  # mAP_0.5:0.95 in points
    latency_s: Mapping[str, float]
    keys: Mapping[str, tuple[int, float]]  # objective -> rank key
    values: Mapping[str, ObjectiveValue]
    base: BaseSummary | None = None  # layers and effectiveness, what a depth budget relative to it reads


def evaluate(records: Sequence[yb.Record], stored: Mapping[str, Any], names: Sequence[str]) -> list[Point]:
    points = []
    for rec in records:
        if rec.model not in stored:
            continue
        s = stored[rec.model]
        rows = at_size(s["rows"], s["counted"], rec.imgsz)
        ctx = ObjectiveContext(imgsz=rec.imgsz)
        vals = {n: get_objective(n)(rows, ctx) for n in names}
        keys = {n: rank_key(vals[n], get_objective(n).direction) for n in names}
        points.append(Point(rec.model, yb.parse_name(rec.model).version, rec.imgsz, 100 * rec.map50_95,
                            rec.latency_s, keys, vals, summarize(rows, ctx)))
    return points


# --- metrics ------------------------------------------------------------------------------------------

def scalar_ranks(keys: Sequence[tuple[int, float]]) -> list[float]:
    """Rank keys (feasible, value) as numbers for scipy: equal keys share a rank."""
    order = sorted(set(keys))
    at = {k: i for i, k in enumerate(order)}
    return [float(at[k]) for k in keys]


def correlations(points: Sequence[Point], name: str) -> dict[str, float]:
    """Mean over resolutions of Kendall tau-b and Spearman rho against mAP."""
    taus, rhos = [], []
    for pts in _by_size(points).values():
        x, y = scalar_ranks([p.keys[name] for p in pts]), [p.map_pts for p in pts]
        if len(pts) < 3:
            continue
        taus.append(_finite(stats.kendalltau(x, y).statistic))
        rhos.append(_finite(stats.spearmanr(x, y).statistic))
    return {"kendall": _mean(taus), "spearman": _mean(rhos), "sizes": len(taus)}


def pairwise_accuracy(points: Sequence[Point], name: str, device: str, *, same_size: bool) -> dict[str, float]:
    """Share of near-latency pairs (max/min <= 1.1) the objective orders as mAP; ties count 1/2."""
    score, pairs = 0.0, 0
    for i, a in enumerate(points):
        for b in points[i + 1:]:
            if same_size and a.imgsz != b.imgsz or a.map_pts == b.map_pts:
                continue
            la, lb = a.latency_s[device], b.latency_s[device]
            if max(la, lb) > NEAR * min(la, lb):
                continue
            pairs += 1
            ka, kb = a.keys[name], b.keys[name]
            score += 0.5 if ka == kb else float((ka > kb) == (a.map_pts > b.map_pts))
    return {"accuracy": score / pairs if pairs else math.nan, "pairs": pairs}


def regrets(points: Sequence[Point], name: str | None, device: str) -> list[float]:
    """Regret at every distinct latency of `points` as a budget; name None is the random pick."""
    out = []
    for budget in sorted({p.latency_s[device] for p in points}):
        feasible = [p for p in points if p.latency_s[device] <= budget]
        best = max(p.map_pts for p in feasible)
        if name is None:
            out.append(best - statistics.fmean(p.map_pts for p in feasible))
            continue
        top = max(p.keys[name] for p in feasible)
        out.append(best - statistics.fmean(p.map_pts for p in feasible if p.keys[name] == top))
    return out


def regret_summary(points: Sequence[Point], name: str | None, device: str) -> dict[str, float]:
    per_size = [regrets(pts, name, device) for pts in _by_size(points).values()]
    one = [statistics.fmean(r) for r in per_size]
    choice = regrets(points, name, device)
    return {"one_size": _mean(one), "one_size_max": max(max(r) for r in per_size),
            "size_choice": _mean(choice), "size_choice_max": max(choice)}


def base_search_regrets(points: Sequence[Point], name: str, device: str, *, budgeted: bool) -> list[float]:
    """A search around each point as its base: same size and family, the base's latency as the budget.

    With `budgeted`, an objective that grows with depth also keeps the default depth budget relative to
    the base (search.objectives.depth_budget); the regret is against the best under the latency budget.
    """
    out = []
    for pts in _by_size(points).values():
        for b in pts:
            feasible = [p for p in pts if p.family == b.family and p.latency_s[device] <= b.latency_s[device]]
            rule = depth_budget(get_objective(name), b.base) if budgeted and b.base else None
            allowed = [p for p in feasible if _within(p, rule)]
            top = max(p.keys[name] for p in allowed)
            out.append(max(p.map_pts for p in feasible)
                       - statistics.fmean(p.map_pts for p in allowed if p.keys[name] == top))
    return out


def _within(p: Point, rule: Any) -> bool:
    if rule is None or p.base is None:
        return True
    return p.base.layers <= rule.max_layers and p.base.effectiveness <= rule.max_effectiveness * (1 + 1e-12)


def _by_size(points: Iterable[Point]) -> dict[int, list[Point]]:
    out: dict[int, list[Point]] = {}
    for p in points:
        out.setdefault(p.imgsz, []).append(p)
    return dict(sorted(out.items()))


def _finite(x: float) -> float:
    return float(x) if x is not None and math.isfinite(x) else math.nan


def _mean(xs: Sequence[float]) -> float:
    xs = [x for x in xs if not math.isnan(x)]
    return statistics.fmean(xs) if xs else math.nan


# --- report -------------------------------------------------------------------------------------------

def analyse(points: Sequence[Point], names: Sequence[str], devices: Sequence[str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for group, families in GROUPS.items():
        pts = [p for p in points if p.family in families]
        g: dict[str, Any] = {"models": len({p.model for p in pts}), "objectives": {}}
        for name in [*names, None]:
            label = name or "random"
            entry: dict[str, Any] = {} if name is None else correlations(pts, name)
            entry["regret"] = {d: regret_summary(pts, name, d) for d in devices}
            if name is not None:
                entry["pairwise"] = {d: {"one_size": pairwise_accuracy(pts, name, d, same_size=True),
                                         "any_size": pairwise_accuracy(pts, name, d, same_size=False)}
                                     for d in devices}
            key = [entry["regret"][d][m] for d in KEY_DEVICES if d in devices for m in ("one_size", "size_choice")]
            entry["key_regret"] = _mean(key)
            if name is not None:
                entry["base_search"] = {d: {"free": _mean(base_search_regrets(pts, name, d, budgeted=False)),
                                            "depth_budget": _mean(base_search_regrets(pts, name, d, budgeted=True))}
                                        for d in KEY_DEVICES if d in devices}
            g["objectives"][label] = entry
        out[group] = g
    return out


def table(result: Mapping[str, Any], devices: Sequence[str]) -> str:
    from _search_common import md_table

    key = [d for d in KEY_DEVICES if d in devices]
    short = {d: d.replace("_latency", "").replace("_tflite", "") for d in devices}
    parts = []
    for group, g in result.items():
        head = ["objective", "Kendall", "Spearman", *(f"pair acc {short[d]}" for d in key),
                *(f"regret {short[d]} (1 size / size choice)" for d in key),
                "regret, all devices (1 size / size choice)", "mean key regret"]
        rows = []
        for label, e in sorted(g["objectives"].items(), key=lambda kv: kv[1]["key_regret"]):
            allr = [e["regret"][d] for d in devices]
            rows.append([label, _f(e.get("kendall")), _f(e.get("spearman")),
                         *(_f(e["pairwise"][d]["one_size"]["accuracy"]) if "pairwise" in e else "-" for d in key),
                         *(f"{_f(e['regret'][d]['one_size'])} / {_f(e['regret'][d]['size_choice'])}" for d in key),
                         f"{_f(_mean([r['one_size'] for r in allr]))} / {_f(_mean([r['size_choice'] for r in allr]))}",
                         _f(e["key_regret"])])
        parts.append(f"### {group} ({g['models']} models x 11 sizes)\n\n" + md_table(head, rows))
    head = ["group", "objective", *(f"{short[d]}: free / depth budget" for d in key)]
    rows = [[group, label, *(f"{_f(e['base_search'][d]['free'])} / {_f(e['base_search'][d]['depth_budget'])}"
                             for d in key)]
            for group, g in result.items() if group in ("yolo5", "yolo8", "pooled")
            for label, e in sorted(g["objectives"].items()) if "base_search" in e]
    parts.append("### Search around a base: each model as the base, its latency as the budget, candidates of its "
                 "family at its size; regret without and with the default depth budget (layers and "
                 "effectiveness at most the base's, for objectives that grow with depth)\n\n" + md_table(head, rows))
    return "\n\n".join(parts)


def verdict(result: Mapping[str, Any]) -> dict[str, Any]:
    """The lowest mean key regret (openvino and raspi4, one size and size choice) on yolo5+yolo8, vs GMACs."""
    objs = result["yolo5+yolo8"]["objectives"]
    best = min((n for n in objs if n != "random"), key=lambda n: objs[n]["key_regret"])
    g = objs["gmacs"]
    return {"lowest_key_regret": best, "kendall": objs[best]["kendall"], "key_regret": objs[best]["key_regret"],
            "gmacs_key_regret": g["key_regret"], "mae_key_regret": objs["mae"]["key_regret"],
            "kendall_at_least_0.9": objs[best]["kendall"] >= 0.9,
            "regret_at_most_gmacs": objs[best]["key_regret"] <= g["key_regret"]}


def _f(x: Any) -> str:
    return "-" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{x:.3f}"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=yb.DATA, help="the YOLOBench folder (default ../shared/data/yolobench)")
    ap.add_argument("--cache", type=Path, default=None, help="JSON file keeping the counted rows between runs")
    ap.add_argument("--objectives", default=None, help="comma-separated names (default: every registered one)")
    ap.add_argument("--no-write", action="store_true", help="print the table only")
    a = ap.parse_args()
    t0 = time.time()
    records, devices = yb.load_records(a.data)
    variants, unmapped = yb.variants([r.model for r in records])
    sizes = sorted({r.imgsz for r in records})
    stored = collect(variants, sizes, a.cache)
    names = a.objectives.split(",") if a.objectives else list(objective_names())
    points = evaluate(records, stored, names)
    result = analyse(points, names, devices)
    md = table(result, devices)
    best = verdict(result)
    data = {"benchmark": "objective_validity", "verdict": best, "metric": yb.METRIC, "sizes": sizes, "devices": list(devices),
            "models": [v.name for v in variants], "not_mapped": list(unmapped), "results": result,
            "definitions": {o: get_objective(o).description for o in names}, "seconds": round(time.time() - t0, 1)}
    text = ("# Objective validity on YOLOBench (COCO mAP_0.5:0.95, stored device latencies)\n\n"
            f"{len(variants)} models built and checked row by row; not mapped (no layout in the data's README): "
            f"{', '.join(unmapped)}.\nKendall/Spearman: mean over the {len(sizes)} sizes. Pair accuracy: pairs at one "
            f"size within 10% latency. Regret: mAP points below the best under each budget; mean key regret: the "
            f"mean of the openvino and raspi4 regrets, one size and size choice.\n\n"
            f"Lowest mean key regret on yolo5+yolo8: **{best['lowest_key_regret']}** ({_f(best['key_regret'])}; "
            f"gmacs {_f(best['gmacs_key_regret'])}, mae {_f(best['mae_key_regret'])}), Kendall {_f(best['kendall'])}.\n\n"
            f"{md}")
    if a.no_write:
        print(text)
        return
    from _search_common import write

    write("objective_validity", data, text)


if __name__ == "__main__":
    main()
