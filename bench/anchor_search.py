"""Does anchoring a table before a search change what the search finds? The same `zoo search --latency
hybrid` on one table, anchored first (the default) and not (`--no-anchor`), side by side.

  1. the table (`--lut`, e.g. one of bench/lut_accuracy.py's) is copied twice without its anchor records,
     so both runs start from the build's speed;
  2. `zoo search CONFIG --imgsz N --threads 1 --budget-ms B --latency hybrid --trials T` on each copy,
     the second with `--no-anchor` (the first anchors: 5 candidates the table prices whole, search.lutplans.anchor_sources, 3 rounds;
     records before anchor_search_outside anchored on the config and its first 4 candidates);
  3. per run: the anchor's factor, the top candidates' table prices against their re-measured medians
     (the export's final check), best.yaml's score and measured latency, the wall time.
A table built while the device ran at another speed prices every candidate off by that gap; unanchored, a
hybrid search then keeps candidates that are really much faster than the budget (or re-measures its top
ones over it). Writes bench/results/anchor_search.{json,md}; run it alone (it measures).
Usage: python bench/anchor_search.py --lut TABLE [--config yolov5s] [--imgsz 320] [--budget-ms 40]
       [--trials 500] [--tag TAG]
"""
from __future__ import annotations

import argparse
import csv
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).parent))

import cli  # noqa: E402
from _search_common import machine, md_table, write  # noqa: E402


def without_anchors(src: Path, dst: Path) -> None:
    """The table as built: every line but the anchor records (the latest of which would otherwise stand)."""
    lines = src.read_text().splitlines(keepends=True)
    dst.write_text("".join(ln for ln in lines if not (ln.startswith("{") and json.loads(ln).get("kind") == "anchor")))


def run(a: argparse.Namespace, folder: Path, anchored: bool) -> dict[str, Any]:
    table = folder / "table.lut"
    without_anchors(Path(a.lut), table)
    argv = ["search", a.config, "--imgsz", str(a.imgsz), "--threads", "1", "--budget-ms", str(a.budget_ms),
            "--latency", "hybrid", "--lut", str(table), "--trials", str(a.trials), "--seed", str(a.seed),
            "--no-progress", "-o", str(folder / "out"), "--storage", str(folder / "j.log")]
    if not anchored:
        argv.append("--no-anchor")
    t0 = time.perf_counter()
    rc = cli.main(argv)
    wall = time.perf_counter() - t0
    report = json.loads((folder / "out" / "report.json").read_text())
    trials = csv.DictReader((folder / "out" / "trials.csv").read_text().splitlines())
    priced = {int(r["number"]): float(r["latency_median_ms"]) for r in trials if r["latency_median_ms"]}
    top = [{"trial": c["trial"], "table_ms": priced[c["trial"]], "measured_ms": c["latency_ms"]["median"],
            "meets_budget": c["meets_budget"]} for c in report["remeasured"]]
    anchor = None
    for ln in table.read_text().splitlines():
        if ln.startswith("{") and json.loads(ln).get("kind") == "anchor":
            anchor = json.loads(ln)
    best = report["best"]
    return {"anchored": anchored, "rc": rc, "wall_s": wall, "anchor_factor": anchor["factor"] if anchor else None,
            "best": None if best is None else {"trial": best["trial"], "score": best["score"],
                                               "measured_ms": best["latency_ms"]["median"]},
            "base_measured_ms": report["base"]["latency_ms"]["median"] if report["base"] else None,
            "top": top, "table_over_measured": statistics.median(t["table_ms"] / t["measured_ms"] for t in top)
            if top else None}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--lut", required=True, help="this device's table (its anchor records are left out)")
    ap.add_argument("--config", default="yolov5s")
    ap.add_argument("--imgsz", type=int, default=320)
    ap.add_argument("--budget-ms", type=float, default=40.0)
    ap.add_argument("--trials", type=int, default=500)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--tag", help="write anchor_search_TAG.{json,md}")
    a = ap.parse_args()
    load0 = os.getloadavg()
    runs = []
    with tempfile.TemporaryDirectory(prefix="zoo-anchor-search-") as tmp:
        for anchored in (True, False):
            folder = Path(tmp) / ("anchored" if anchored else "plain")
            folder.mkdir()
            runs.append(run(a, folder, anchored))
    load1 = os.getloadavg()
    rows = [["anchored first" if r["anchored"] else "--no-anchor",
             "-" if r["anchor_factor"] is None else f"x{r['anchor_factor']:.3f}",
             "-" if r["table_over_measured"] is None else f"{r['table_over_measured']:.3f}",
             " / ".join(f"{t['table_ms']:.1f}:{t['measured_ms']:.1f}" for t in r["top"]),
             "-" if r["best"] is None else f"{r['best']['score']:.2f}",
             "-" if r["best"] is None else f"{r['best']['measured_ms']:.2f}",
             f"{r['base_measured_ms']:.2f}" if r["base_measured_ms"] else "-", f"{r['wall_s']:.0f}"] for r in runs]
    text = (f"Anchored and unanchored `zoo search {a.config} --imgsz {a.imgsz} --threads 1 --budget-ms {a.budget_ms:g} "
            f"--latency hybrid --trials {a.trials} --seed {a.seed}` on `{a.lut}` (anchor records left out); load "
            f"average {load0[0]:.2f} before, {load1[0]:.2f} after\n\n"
            + md_table(["run", "anchor", "table / measured (median of the top)",
                        "top candidates: table ms : measured ms", "best score", "best measured ms",
                        "base measured ms", "wall s"], rows))
    name = "anchor_search" + (f"_{a.tag}" if a.tag else "")
    write(name, {"machine": machine(), "argv": sys.argv[1:], "loadavg_before": load0, "loadavg_after": load1,
                 "runs": runs}, text)


if __name__ == "__main__":
    main()
