"""How well does each registered objective predict trained accuracy? YOLOBench's stored results say.

For every YOLOBench model zoo can build (bench/yolobench.py: the 25 yolo3/yolo5/yolo8 names of the 52;
the built rows are asserted against the data README's rule) and each of its 11 resolutions, every
objective of search.objectives is computed from the architecture alone, on the rows a search reads (the
row plan at that size and the per-signature row costs: exact at every size, nothing scaled), and
compared with the trained mAP_0.5:0.95, per family (yolo3, yolo5, yolo8), for yolo5+yolo8 and pooled:
- Kendall tau and Spearman rho within each resolution (scipy.stats), averaged over the resolutions;
- pairwise accuracy: over pairs whose latency on a device is within 10% (max/min <= 1.1), the share the
  objective orders as mAP does (objective ties count one half), pairs at one resolution and across;
- regret: for every distinct latency of a device column as a budget, the best mAP under the budget minus
  the mAP of the objective's pick (ties: their mean), in mAP points, averaged over budgets; at one
  resolution (averaged over the 11) and with the resolution as a choice. The random baseline is the
  expected regret of a uniform pick under the budget (exact, no sampling).
Latencies are the data's stored ones, so machine load does not matter. Writes
bench/results/objective_validity.{json,md}. Usage: python bench/objective_validity.py [--cache FILE]
(a row-cost cache file: the first run counts some 3,400 rows, about 3.5 CPU minutes; a rerun about 30 s).
"""
from __future__ import annotations

import argparse
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
from profiles.flops import count_flops  # noqa: E402
from profiles.rowcosts import CostCache  # noqa: E402
from search.settings import DEFAULT_OBJECTIVE as DEFAULT  # noqa: E402
from search.objectives import (BaseSummary, ObjectiveContext, ObjectiveValue, RowTerms, depth_budget,  # noqa: E402
                               get_objective, objective_names, rank_key, rows_from_plan, summarize)
from zoo.plan import plan_config  # noqa: E402

GROUPS = {"yolo3": ("yolo3",), "yolo5": ("yolo5",), "yolo8": ("yolo8",), "yolo5+yolo8": ("yolo5", "yolo8"),
          "pooled": ("yolo3", "yolo5", "yolo8")}
NEAR = 1.10  # pairs whose latencies are within 10%
KEY_DEVICES = ("openvino_latency", "raspi4_tflite_latency")
BASELINES = ("gmacs", "params")  # sizes, not scores: what a score has to beat
Rows = tuple[RowTerms, ...]


def collect(variants: Sequence[yb.Variant], sizes: Sequence[int], cache: CostCache) -> dict[tuple[str, int], Rows]:
    """Build and check every variant, then plan it at every size and read its rows' costs from `cache`.

    The rows the objectives read are the plan's (zoo.plan at the real image size, the per-signature
    costs of profiles.rowcosts), exactly what a search scores; the built model is checked against the
    README's rule and the plan against the built model (repeats and channels row by row, and once per
    layout the plan's params and MACs against the whole model's, fvcore at the largest size).
    """
    rows: dict[tuple[str, int], Rows] = {}
    checked: set[str] = set()
    for v in variants:
        t = time.time()
        model = yb.build(v)
        yb.check_rows(v, model)
        if v.version == "yolo3":
            yb.check_yolo3_bottlenecks(v, model)
        mapping = yb.config_mapping(v)
        for size in sizes:
            plan = plan_config(mapping, imgsz=size, prober=cache, scale=v.scale)
            assert [(rp.n, rp.out_channels) for rp in plan.rows] == \
                [(i.repeats, i.out_channels) for i in model.layers], f"{v.name}: the plan differs from the model"
            rows[(v.name, size)] = rows_from_plan(plan, cache.many(rp.signature for rp in plan.rows))
        if v.version not in checked:  # the plan's rows sum to the whole model's counts
            big = rows[(v.name, max(sizes))]
            assert sum(r.cost.macs for r in big) == count_flops(model, imgsz=max(sizes)).macs, f"{v.name}: MACs"
            assert sum(r.cost.params for r in big) == sum(p.numel() for p in model.parameters()), f"{v.name}: params"
            checked.add(v.version)
        print(f"  {v.name}: {len(model.layers)} rows checked, planned at {len(sizes)} sizes, "
              f"{time.time() - t:.1f}s ({cache.computed} row costs computed so far)", file=sys.stderr, flush=True)
    return rows


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


def evaluate(records: Sequence[yb.Record], rows: Mapping[tuple[str, int], Rows], names: Sequence[str]) -> list[Point]:
    points = []
    for rec in records:
        r = rows.get((rec.model, rec.imgsz))
        if r is None:
            continue
        ctx = ObjectiveContext(imgsz=rec.imgsz)
        vals = {n: get_objective(n)(r, ctx) for n in names}
        keys = {n: rank_key(vals[n], get_objective(n).direction) for n in names}
        points.append(Point(rec.model, yb.parse_name(rec.model).version, rec.imgsz, 100 * rec.map50_95,
                            rec.latency_s, keys, vals, summarize(r, ctx)))
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
    if rule.max_layers is not None and p.base.layers > rule.max_layers:
        return False
    return rule.max_effectiveness is None or p.base.effectiveness <= rule.max_effectiveness * (1 + 1e-12)


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


def short_name(device: str) -> str:
    return device.replace("_latency", "").replace("_tflite", "").replace("_trt", "")


def table(result: Mapping[str, Any], devices: Sequence[str], groups: Sequence[str] | None = None) -> str:
    """One table, every objective per group (families, yolo5+yolo8, pooled), best mean key regret first."""
    from _search_common import md_table

    key = [d for d in KEY_DEVICES if d in devices]
    devices = [*key, *(d for d in devices if d not in key)]
    head = ["group", "objective", "Kendall", "Spearman", *(f"pair acc {short_name(d)}" for d in key),
            *(f"regret {short_name(d)}" for d in devices), "mean key regret"]
    rows = []
    for group, g in result.items():
        if groups is not None and group not in groups:
            continue
        for label, e in sorted(g["objectives"].items(), key=lambda kv: kv[1]["key_regret"]):
            pair = [f"{_f(e['pairwise'][d]['one_size']['accuracy'])} / {_f(e['pairwise'][d]['any_size']['accuracy'])}"
                    if "pairwise" in e else "-" for d in key]
            regret = [f"{_f(e['regret'][d]['one_size'])} / {_f(e['regret'][d]['size_choice'])}" for d in devices]
            rows.append([f"{group} ({g['models']})", label, _f(e.get("kendall")), _f(e.get("spearman")), *pair,
                         *regret, _f(e["key_regret"])])
    return md_table(head, rows)


def base_table(result: Mapping[str, Any], devices: Sequence[str]) -> str:
    from _search_common import md_table

    key = [d for d in KEY_DEVICES if d in devices]
    head = ["group", "objective", *(f"{short_name(d)}: free / depth budget" for d in key)]
    rows = [[group, label, *(f"{_f(e['base_search'][d]['free'])} / {_f(e['base_search'][d]['depth_budget'])}"
                             for d in key)]
            for group, g in result.items() if group in ("yolo5", "yolo8", "pooled")
            for label, e in sorted(g["objectives"].items()) if "base_search" in e]
    return md_table(head, rows)


def verdict(result: Mapping[str, Any]) -> dict[str, Any]:
    """The lowest mean key regret (openvino and raspi4, one size and size choice) on yolo5+yolo8, vs GMACs."""
    objs = result["yolo5+yolo8"]["objectives"]
    best = min((n for n in objs if n != "random"), key=lambda n: objs[n]["key_regret"])
    g = objs["gmacs"]
    return {"lowest_key_regret": best, "kendall": objs[best]["kendall"], "key_regret": objs[best]["key_regret"],
            "gmacs_key_regret": g["key_regret"], "mae_key_regret": objs["mae"]["key_regret"],
            "kendall_at_least_0.9": objs[best]["kendall"] >= 0.9,
            "regret_at_most_gmacs": objs[best]["key_regret"] <= g["key_regret"]}


def report(data: Mapping[str, Any], devices: Sequence[str]) -> str:
    """The markdown: what was measured, the one table, the default and why, the search around a base."""
    best, result, sizes = data["verdict"], data["results"], data["sizes"]
    objs = result["yolo5+yolo8"]["objectives"]
    key = " and ".join(short_name(d) for d in KEY_DEVICES if d in devices)
    d, g = objs[DEFAULT], objs["gmacs"]
    free = [n for n in objs if n not in ("random", *BASELINES)]
    rest = ", ".join(f"{n} {_f(objs[n]['key_regret'])}" for n in sorted(free, key=lambda n: objs[n]["key_regret"])
                     if n not in (DEFAULT, "mae"))
    keys = [k for k in KEY_DEVICES if k in devices]

    def one(e: Mapping[str, Any]) -> float:
        return _mean([e["regret"][k]["one_size"] for k in keys])

    def choice(e: Mapping[str, Any]) -> float:
        return _mean([e["regret"][k]["size_choice"] for k in keys])
    return (
        "# Objective validity on YOLOBench (COCO mAP_0.5:0.95, stored device latencies)\n\n"
        f"{len(data['models'])} models (every yolo3/yolo5/yolo8 name of the accuracy table) built and checked row by "
        f"row against the data README's rule; their rows planned by zoo.plan and costed by profiles.rowcosts at each "
        f"of the {len(sizes)} sizes ({sizes[0]}..{sizes[-1]} px), as a search scores them. Not mapped (no layout in "
        f"the data's README): {', '.join(data['not_mapped'])}. The latency table's further names have no trained "
        f"accuracy.\n\n"
        f"Kendall / Spearman: against mAP within each size, mean over the sizes. Pair acc: share of pairs within 10% "
        f"latency ordered as mAP orders them (pairs at one size / at any sizes). Regret: mAP points below the best "
        f"model under each distinct latency of the device as a budget, mean over budgets (one size, mean over the "
        f"sizes / with the size as a choice). Mean key regret: the mean of the {key} regrets, one size and size "
        f"choice. Random: the expected regret of a uniform pick. Group (n): n models, each at every size; -: no such "
        f"pair.\n\n"
        + table(result, devices) + "\n\n"
        f"## The default objective\n\n"
        f"`zoo search` scores with **{DEFAULT}** by default (search.settings.DEFAULT_OBJECTIVE). The rule: the lowest "
        f"mean key regret on yolo5+yolo8 among the objectives computed from the architecture alone (no training, "
        f"no data); here that is **{best['lowest_key_regret']}**"
        f"{'' if best['lowest_key_regret'] == DEFAULT else ' (the default does not follow the rule: change it)'}. "
        f"On yolo5+yolo8 {DEFAULT} has mean key regret {_f(d['key_regret'])} mAP points against gmacs "
        f"{_f(g['key_regret'])} and mae {_f(objs['mae']['key_regret'])} (the other scores: {rest}); at one size "
        f"{_f(one(d))} against gmacs {_f(one(g))}, with the size as a choice {_f(choice(d))} against {_f(choice(g))}. "
        f"Its Kendall tau is {_f(d['kendall'])} (gmacs {_f(g['kendall'])}, mae {_f(objs['mae']['kendall'])}): "
        f"{'at least' if d['kendall'] >= 0.9 else 'below'} 0.9, and its regret is "
        f"{'at most' if d['key_regret'] <= g['key_regret'] else 'above'} that of GMACs "
        f"({'lower by ' + _f(g['key_regret'] - d['key_regret']) if d['key_regret'] < g['key_regret'] else 'not lower'}"
        f"). Caveat: {DEFAULT} was chosen among six parameter-free variants of one idea on this same data, so its "
        f"figures here are in-sample (nothing was fitted, but the choice was made on them). `--objective mae` keeps "
        f"the MAE-NAS recipe (exact to TinyNAS).\n\n"
        "## Search around a base\n\nEach model as the base, its latency as the budget, candidates of its family at "
        "its size; regret without and with the default depth budget (layers at most the base's, for "
        "objectives that grow with depth).\n\n" + base_table(result, devices))


def _f(x: Any) -> str:
    return "-" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{x:.3f}"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=yb.DATA, help="the YOLOBench folder (default ../shared/data/yolobench)")
    ap.add_argument("--cache", type=Path, default=None,
                    help="row-cost cache (JSON lines, profiles.rowcosts.CostCache) kept between runs")
    ap.add_argument("--objectives", default=None, help="comma-separated names (default: every registered one)")
    ap.add_argument("--no-write", action="store_true", help="print the table only")
    a = ap.parse_args()
    t0 = time.time()
    records, devices = yb.load_records(a.data)
    variants, unmapped = yb.variants([r.model for r in records])
    sizes = sorted({r.imgsz for r in records})
    cache = CostCache(a.cache)
    t_rows = time.time()
    rows = collect(variants, sizes, cache)
    t_rows = time.time() - t_rows
    names = a.objectives.split(",") if a.objectives else list(objective_names())
    points = evaluate(records, rows, names)
    result = analyse(points, names, devices)
    best = verdict(result)
    data = {"benchmark": "objective_validity", "verdict": best, "metric": yb.METRIC, "sizes": sizes, "devices": list(devices),
            "models": [v.name for v in variants], "not_mapped": list(unmapped), "results": result,
            "definitions": {o: get_objective(o).description for o in names}, "seconds": round(time.time() - t0, 1),
            "rows": {"seconds": round(t_rows, 1), "row_costs_computed": cache.computed, "row_costs": len(cache),
                     "leaf_counts": cache.model.leaf_counts, "whole_row_counts": cache.model.whole_counts}}
    text = report(data, devices)
    if a.no_write:
        print(text)
        return
    from _search_common import write

    write("objective_validity", data, text)


if __name__ == "__main__":
    main()
