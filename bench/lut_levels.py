"""One in-context table read both ways (`levels` per_model and none, profiles.lutlevels), judged on every session
bench/lut_accuracy.py recorded for it: does fitting each build model's level rank and price the candidates better?

For each table (a kept `--tables` file) and its records (the same candidates, seed 1, checked by their rows'
digests), nothing is timed:
  - the models' fitted levels: their spread (sd, 5th-95th percentile), how many were fitted;
  - per session and per reading: the table's predictions against the session's measured medians at the
    session's own level (divided out: within 5%/10%, Kendall tau), and anchored as the session was (the
    anchor's models, recorded measured / this reading's prediction of them, their median);
  - per reading: the table against all its sessions pooled (bench/lut_sessions.pooled: each session's level
    divided out, each candidate's geometric mean).
The tables are not in the repository (each is ~9 MB): the record names the files it read and their size.
Usage: python bench/lut_levels.py --case TABLE=RECORD,RECORD[,...] [--case ...] [--tag TAG] [--results DIR]
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import warnings
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).parent))

from _search_common import RESULTS, md_table  # noqa: E402
from lut_accuracy import judged, level_free  # noqa: E402
from lut_sessions import pooled  # noqa: E402
from profiles.lut import LEVELS, LatencyTable, plan_digest, plan_refs, predict_plan  # noqa: E402
from search.lutplans import anchor_sources  # noqa: E402
from search.settings import load_settings  # noqa: E402
from search.space import build_space  # noqa: E402
from zoo.config import load_config  # noqa: E402


def load_record(path: str) -> dict[str, Any]:
    """The record's one torch in-context case with named points."""
    record = json.loads(Path(path).read_text())
    cases = [c for c in record["cases"] if c.get("timing") == "in_context" and c.get("points")
             and all("rows" in p for p in c["points"])]
    if len(cases) != 1:
        raise SystemExit(f"{path}: {len(cases)} in-context cases with named points (need one)")
    return {"path": path, "loadavg": [record.get("loadavg_before"), record.get("loadavg_after")], **cases[0]}


def judge_table(table_path: str, records: list[str]) -> dict[str, Any]:
    got = [load_record(r) for r in records]
    config, imgsz, n = got[0]["config"], got[0]["imgsz"], got[0]["candidates"]
    if any((g["config"], g["imgsz"], g["candidates"]) != (config, imgsz, n) for g in got):
        raise SystemExit(f"{table_path}: the records are not of one case")
    cfg = load_config(config)
    space = build_space(cfg, load_settings(cfg))
    plans = [space.plan(p, imgsz=imgsz) for p in space.sample(n, seed=1)]  # bench/lut_accuracy.py's candidates
    digests = [plan_digest(plan_refs(p)) for p in plans]
    for g in got:
        if [p["rows"] for p in g["points"]] != digests:
            raise SystemExit(f"{g['path']}: its candidates are not seed 1's of {config} at {imgsz} px")
    measured = [[p["measured_ms"] for p in g["points"]] for g in got]
    _, together = pooled(measured)
    readings = {}
    for levels in LEVELS:
        table = LatencyTable.load(table_path, levels=levels)
        table.anchor = None
        predicted = [predict_plan(table, p).total_ms for p in plans]
        sessions = []
        for g, m in zip(got, measured):
            out = {"path": g["path"], "own_level": level_free(predicted, m)}
            if g.get("anchor"):
                sources = {s.model_name: s for s in anchor_sources(table, [config], imgsz=imgsz,
                                                                   samples=len(g["anchor"]["models"]))}
                ratios = [a["measured_ms"] / predict_plan(table, sources[a["name"]].plan).total_ms
                          for a in g["anchor"]["models"] if a["name"] in sources]
                if len(ratios) != len(g["anchor"]["models"]):
                    raise SystemExit(f"{g['path']}: its anchor's models are not the table's anchor candidates")
                factor = statistics.median(ratios)
                out["anchored"] = {"factor": factor, **judged([p * factor for p in predicted], m)}
            sessions.append(out)
        levels_of = np.array(list(table.model_levels.values())) if table.model_levels else None
        readings[levels] = {
            "sessions": sessions, "pooled": level_free(predicted, together),
            "model_levels": None if levels_of is None else {
                "models": len(levels_of), "sd_pct": float(levels_of.std() * 100),
                "p5": float(np.percentile(levels_of, 5)), "p95": float(np.percentile(levels_of, 95))}}
    return {"table": table_path, "bytes": Path(table_path).stat().st_size, "header_levels":
            LatencyTable.load(table_path).levels, "config": config, "imgsz": imgsz, "candidates": n,
            "records": [{"path": g["path"], "loadavg": g["loadavg"]} for g in got], "readings": readings}


def report(results: list[dict[str, Any]]) -> str:
    def three(c: dict[str, Any]) -> str:
        return f"{c['within_5']:.0%} / {c['within_10']:.0%} / {c['kendall_tau']:.3f}"

    rows, spread, pools = [], [], []
    for r in results:
        name = f"{r['config']} {Path(r['table']).parent.name}"
        per, none = r["readings"]["per_model"], r["readings"]["none"]
        lv = per["model_levels"]
        spread.append([name, r["header_levels"], lv["models"], f"{lv['sd_pct']:.1f}%", f"{lv['p5']:.3f}-{lv['p95']:.3f}"])
        for a, b in zip(none["sessions"], per["sessions"]):
            rows.append([name, Path(a["path"]).stem.removeprefix("lut_accuracy_torch320_"),
                         three(a["own_level"]), three(b["own_level"]),
                         f"{b['own_level']['kendall_tau'] - a['own_level']['kendall_tau']:+.3f}",
                         f"x{a['anchored']['factor']:.3f}: {three(a['anchored'])}" if "anchored" in a else "-",
                         f"x{b['anchored']['factor']:.3f}: {three(b['anchored'])}" if "anchored" in b else "-"])
        pools.append([name, len(r["records"]), three(none["pooled"]), three(per["pooled"]),
                      f"{per['pooled']['kendall_tau'] - none['pooled']['kendall_tau']:+.3f}"])
    return ("In-context tables read both ways (profiles.lutlevels), judged on the sessions recorded for them; nothing "
            "is timed.\n\nThe models' fitted levels (per_model reading):\n\n"
            + md_table(["table", "its header's levels", "models", "sd", "5th-95th percentile"], spread)
            + "\n\nEach session, at its own level (within 5% / 10% / tau) and anchored as it was (the anchor's "
              "recorded models over each reading's prediction of them):\n\n"
            + md_table(["table", "session", "none: own level", "per_model: own level", "tau gained",
                        "none: anchored", "per_model: anchored"], rows)
            + "\n\nEach table against all its sessions pooled (each session's level divided out):\n\n"
            + md_table(["table", "sessions", "none", "per_model", "tau gained"], pools))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--case", action="append", required=True, metavar="TABLE=RECORD,RECORD",
                    help="a kept table and bench/lut_accuracy.py records judged on it (repeatable)")
    ap.add_argument("--tag", help="write lut_levels_TAG.{json,md} (default lut_levels)")
    ap.add_argument("--results", help="where to write (default bench/results)")
    a = ap.parse_args()
    warnings.simplefilter("ignore")
    results = []
    for case in a.case:
        table, _, records = case.partition("=")
        if not records:
            raise SystemExit(f"--case {case}: TABLE=RECORD[,RECORD...]")
        results.append(judge_table(table, records.split(",")))
    text = report(results)
    print(text)
    out = Path(a.results) if a.results else RESULTS
    out.mkdir(parents=True, exist_ok=True)
    name = "lut_levels" + (f"_{a.tag}" if a.tag else "")
    (out / f"{name}.json").write_text(json.dumps({"argv": sys.argv[1:], "tables": results}, indent=2) + "\n")
    (out / f"{name}.md").write_text(text + "\n")
    print(f"wrote {out / name}.json and .md")


if __name__ == "__main__":
    main()
