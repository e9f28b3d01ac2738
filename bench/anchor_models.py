"""Which models should an anchor time? A table's own models against candidates it prices whole, judged by
how far each runs off its prediction beside the candidates a search would price.

For each table (`--lut CONFIG=FILE`, e.g. bench/lut_accuracy.py's), in one interleaved set:
  own      the config and its first 4 candidates of seed 0: the table's first calibration models, what
           `zoo lut anchor` timed before search.lutplans.anchor_sources;
  outside  5 candidates of seed 2 whose every row the table holds (search.lutplans.anchor_sources: what
           an anchor times now);
  judged   `--candidates` candidates of seed 1 (bench/lut_accuracy.py's; rows they lack are left out);
every model built once and kept, `--rounds` rounds each timing all of them in a shuffled order
(bench/lut_accuracy.measure_rounds), each model's median of its rounds' medians against the table's
prediction before any anchor. The anchor that serves the candidates is the set whose measured / predicted
is nearest theirs. Writes bench/results/anchor_models.{json,md}; run it alone (it measures).
Usage: python bench/anchor_models.py --lut yolov5s=T5.lut --lut yolov8s=T8.lut [--imgsz 320] [--rounds 6]
       [--candidates 30]
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import warnings
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).parent))

from _search_common import machine, md_table, write  # noqa: E402
from lut_accuracy import measure_rounds  # noqa: E402
from profiles.backends import backend_of  # noqa: E402
from profiles.lut import LatencyTable, LutError, predict_plan  # noqa: E402
from search.lutplans import anchor_sources, lut_sources  # noqa: E402
from search.settings import load_settings  # noqa: E402
from search.space import build_space  # noqa: E402
from zoo.config import load_config  # noqa: E402


def run_case(config: str, path: str, a: argparse.Namespace) -> dict[str, Any]:
    table = LatencyTable.load(path)
    table.anchor = None  # every prediction at the build's speed: the ratios are what an anchor would find
    backend = backend_of(table.fingerprint)
    own = [s.plan for s in lut_sources([config], imgsz=a.imgsz, samples=4, seed=0)]
    outside = [s.plan for s in anchor_sources(table, [config], imgsz=a.imgsz, samples=5)]
    cfg = load_config(config)
    space = build_space(cfg, load_settings(cfg))
    judged = []
    for params in space.sample(a.candidates, seed=1):
        plan = space.plan(params, imgsz=a.imgsz)
        try:
            predict_plan(table, plan)
        except LutError:
            continue
        judged.append(plan)
    groups = {"own": own, "outside": outside, "judged": judged}
    plans = own + outside + judged
    predicted = [predict_plan(table, p).total_ms for p in plans]
    measured, _, _ = measure_rounds(plans, backend, cfg.ch, a.imgsz, a.rounds, [])
    ratios = [m / p for m, p in zip(measured, predicted)]
    out: dict[str, Any] = {"config": config, "table": path, "rounds": a.rounds}
    start = 0
    for name, members in groups.items():
        rs = ratios[start:start + len(members)]
        start += len(members)
        out[name] = {"models": len(rs), "ratios": rs, "median": statistics.median(rs)}
    for name in ("own", "outside"):
        out[name]["off_judged"] = out[name]["median"] / out["judged"]["median"] - 1
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--lut", action="append", required=True, metavar="CONFIG=FILE", help="a table and its config")
    ap.add_argument("--imgsz", type=int, default=320)
    ap.add_argument("--rounds", type=int, default=6)
    ap.add_argument("--candidates", type=int, default=30, help="judged candidates of seed 1")
    a = ap.parse_args()
    warnings.simplefilter("ignore")
    load0 = os.getloadavg()
    cases = [run_case(*item.split("=", 1), a) for item in a.lut]
    load1 = os.getloadavg()
    rows = [[c["config"], c["judged"]["models"], f"{c['judged']['median']:.3f}",
             f"{c['own']['median']:.3f} ({c['own']['off_judged']:+.1%})",
             " / ".join(f"{r:.3f}" for r in c["own"]["ratios"]),
             f"{c['outside']['median']:.3f} ({c['outside']['off_judged']:+.1%})",
             " / ".join(f"{r:.3f}" for r in c["outside"]["ratios"])] for c in cases]
    text = (f"Anchor models: measured / predicted (the table before any anchor) in one interleaved set of {a.rounds} "
            f"rounds per table, {a.imgsz} px, 1 thread; load average {load0[0]:.2f} before, {load1[0]:.2f} after\n\n"
            + md_table(["table of", "judged candidates (seed 1)", "their median", "own models: median (off theirs)",
                        "own: each", "outside the table (seed 2): median (off theirs)", "outside: each"], rows))
    write("anchor_models", {"machine": machine(), "argv": sys.argv[1:], "loadavg_before": load0,
                            "loadavg_after": load1, "cases": cases}, text)


if __name__ == "__main__":
    main()
