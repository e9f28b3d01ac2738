"""Other families' configs priced from a kept in-context table, judged against medians of interleaved rounds.

bench/lut_accuracy.py `--foreign` times each config alone, one after another, then all again: on a VM whose
speed moves 10-20% within half an hour, the configs timed in a fast stretch look over-predicted and those in a
slow one under-predicted (a fresh yolov5s table: 11 of 23 within 10% while the configs measured twice agreed
20 times in 23; bench/results/lut_accuracy_torch320_yolov5s_fresh_levels_2.md). Here the configs are measured
as that bench measures its candidates: every model built once, `--rounds` rounds each timing all of them in a
shuffled order, a config's figure the median of its rounds; the even rounds against the odd ones are the
floor. The prediction is judged three ways: at the table's own level; anchored just before the rounds
(`zoo lut anchor --samples K` on the table's own space, as a user does before pricing); and scaled by those
anchor models timed inside the same rounds (the device's level of those minutes: what is left is the table's
error). Rows a config lacks are timed in context and appended first (the flow a search or `zoo profile
--latency lut` takes on the table's device), so the table file grows.

    python bench/lut_foreign.py TABLE --space yolov5s [--configs a,b,...] [--imgsz 320] [--rounds 10]
        [--anchor 5] [--tag NAME]
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).parent))

from _search_common import RESULTS, machine, md_table  # noqa: E402
from lut_accuracy import agreement, judged, measure_rounds, split_rounds, three  # noqa: E402
from profiles.backends import get_backend  # noqa: E402
from profiles.lut import LatencyTable, plan_refs, predict_plan  # noqa: E402
from profiles.lutanchor import ANCHOR_ROUNDS, measure_anchor  # noqa: E402
from search.lutplans import anchor_sources  # noqa: E402
from zoo.config import load_config  # noqa: E402
from zoo.plan import plan_config  # noqa: E402

BUILTINS = ("../shared/reference/yolov5/hub/yolov5s-ghost.yaml,../shared/reference/yolov5/hub/yolov5-p2.yaml,"
            "yolov5n,yolov5s,yolov5s-gfpn,yolov5s-effnetv2,yolov5l-ghostdynamic,yolov8n,yolov9t,yolov9c,yolov10n,"
            "yolov10s,yolo11n,yolo11s,yolo12n,yolo12s,yolo26n,yolo26s,damo-yolo-t,damo-yolo-s,damo-yolo-m,rtdetr-l,"
            "rtdetr-l-ghostv3")  # every built-in detector family and the hub configs the issue names


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("table", help="an in-context table of this device (kept by bench/lut_accuracy.py --tables)")
    ap.add_argument("--space", required=True, help="the config whose space the table was built for (the anchor's)")
    ap.add_argument("--configs", default=BUILTINS, help="comma-separated names or paths")
    ap.add_argument("--imgsz", type=int, default=320)
    ap.add_argument("--rounds", type=int, default=10)
    ap.add_argument("--anchor", type=int, default=5, help="candidates of --space the anchor times")
    ap.add_argument("--tag", default="")
    a = ap.parse_args()
    if a.rounds < 2:
        ap.error("--rounds must be at least 2 (the even rounds against the odd ones)")
    load0 = os.getloadavg()[0]
    backend = get_backend("torch", threads=1, device="cpu")
    table = LatencyTable.open(a.table, backend)
    table.anchor = None  # at the table's own level first (a kept table holds its last run's anchor)
    names = [n for n in a.configs.split(",") if n]
    plans, missing = [], []
    for i, name in enumerate(names):
        plan = plan_config(load_config(name), imgsz=a.imgsz)
        lacks = sorted({r.label or r.key for r in plan_refs(plan) if r.key not in table.entries})
        print(f"\r  rows: {i + 1}/{len(names)} {name} ({len(lacks)} missing)", end="", file=sys.stderr, flush=True)
        predict_plan(table, plan, measure=True)  # the rows it lacks timed in context and appended
        plans.append(plan)
        missing.append(lacks)
    print(file=sys.stderr)
    predicted = [(p := predict_plan(table, plan)).total_ms / p.anchor for plan in plans]
    sources = anchor_sources(table, [a.space], imgsz=a.imgsz, samples=a.anchor)
    anchor = measure_anchor(table, sources)
    anchored = [p * anchor.factor for p in predicted]
    level_plans = [s.plan for s in sources]
    seconds: list[float] = []
    chans = {plan.config.ch for plan in plans + level_plans}
    if len(chans) != 1:
        ap.error(f"the configs take different input channels ({sorted(chans)}); judge them separately")
    got = measure_rounds(plans + level_plans, backend, chans.pop(), a.imgsz, a.rounds, seconds)
    after = measure_anchor(table, sources)
    n = len(plans)
    measured, even, odd = split_rounds(got[:n])
    level_pred = [p.total_ms / p.anchor for p in (predict_plan(table, lp) for lp in level_plans)]
    ratios = [statistics.median(g) / p for g, p in zip(got[n:], level_pred)]
    in_rounds = statistics.median(ratios)
    concurrent = [p * in_rounds for p in predicted]
    load1 = os.getloadavg()[0]
    configs = [{"config": name, "missing_rows": len(lacks), "e_g": lacks[:3], "predicted_ms": p, "measured_ms": m,
                "even_ms": e, "odd_ms": o, "rounds_ms": g, "error": p / m - 1, "anchored_error": pa / m - 1,
                "in_rounds_error": pc / m - 1}
               for name, lacks, p, pa, pc, m, e, o, g in zip(names, missing, predicted, anchored, concurrent, measured,
                                                              even, odd, got[:n])]
    record = {"table": str(a.table), "levels": table.levels, "space": a.space, "imgsz": a.imgsz, "rounds": a.rounds,
              "configs": configs, "unanchored": judged(predicted, measured),
              "anchor": {"factor": anchor.factor, "after": after.factor, "rounds": ANCHOR_ROUNDS,
                         "models": [m.name for m in anchor.models], **judged(anchored, measured)},
              "in_rounds": {"factor": in_rounds, "ratios": ratios, **judged(concurrent, measured)},
              "floor": agreement(odd, even), "measure_s": sum(seconds), "load": [load0, load1], "machine": machine()}
    name = f"lut_foreign{'_' + a.tag if a.tag else ''}"
    (RESULTS / f"{name}.json").write_text(json.dumps(record, indent=1))

    rows = [[c["config"], c["missing_rows"], f"{c['predicted_ms']:.2f}", f"{c['measured_ms']:.2f}",
             f"{c['error']:+.1%}", f"{c['anchored_error']:+.1%}", f"{c['in_rounds_error']:+.1%}",
             f"{c['odd_ms'] / c['even_ms'] - 1:+.1%}"] for c in configs]
    text = (f"Other families from the {a.space} table `{a.table}` (levels {table.levels}), {a.imgsz} px, 1 thread: "
            f"{n} configs measured in {a.rounds} interleaved rounds (bench/lut_accuracy.py's ROUND_PROTOCOL), "
            f"load average {load0:.2f} before, {load1:.2f} after\n\n"
            + md_table(["config", "rows missing (appended)", "predicted ms (table's level)", "measured ms",
                        "error", "anchored", "at the rounds' level", "odd rounds / even"], rows)
            + "\n\n"
            + md_table(["judged", "factor", "within 5% / 10% / tau", "mean error", "worst"],
                       [["table's own level", "-", three(record["unanchored"]),
                         f"{record['unanchored']['mean_error']:+.1%}", f"{record['unanchored']['worst_error']:+.1%}"],
                        [f"anchored before ({a.anchor} candidates of {a.space}, after: x{after.factor:.3f})",
                         f"x{anchor.factor:.3f}", three(record["anchor"]), f"{record['anchor']['mean_error']:+.1%}",
                         f"{record['anchor']['worst_error']:+.1%}"],
                        ["the anchor's models timed in the rounds", f"x{in_rounds:.3f}", three(record["in_rounds"]),
                         f"{record['in_rounds']['mean_error']:+.1%}", f"{record['in_rounds']['worst_error']:+.1%}"],
                        ["floor: even rounds vs odd", "-", three(record["floor"]), "-", "-"]])
            + "\n")
    (RESULTS / f"{name}.md").write_text(text)
    print(text)


if __name__ == "__main__":
    main()
