"""The headline search: `zoo search yolov5s --imgsz 320 --threads 1 --budget-ms B --trials 2000` in the
default latency mode (`auto`: a table built as the search goes, rows timed in context), B = 80% of
yolov5s's own measured median.

Reports: the search's wall time (target <= 10 min on a quiet 2-core machine), best.yaml re-measured in
a fresh process as `zoo profile` measures (target <= 1.05 B), and every uniform depth/width scaling of
yolov5s measured whole the same way, with its default-objective score: best.yaml's score must beat every
scaling that meets B when measured (the fair comparison: measured, not predicted).
Writes bench/results/auto_search.{json,md}; `--quick` (a few trials, a coarse budget) writes to a
temporary folder. Run it alone on a quiet machine.
Usage: python bench/auto_search.py [--quick] [--config yolov5s] [--imgsz 320] [--trials 2000] [--share 0.8]
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).parent))

from _search_common import RESULTS, machine, md_table  # noqa: E402


def profiled_ms(source: str, imgsz: int, runs: int) -> float:
    """`zoo profile SOURCE --imgsz N --threads 1` in a fresh process: the whole model's median."""
    cmd = [sys.executable, str(ROOT / "cli.py"), "profile", source, "--imgsz", str(imgsz), "--threads", "1",
           "--runs", str(runs), "--format", "json"]
    done = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, check=True)
    return json.loads(done.stdout)[0]["latency_ms"]["median"]


def uniform_scalings(config: str, imgsz: int) -> list[dict]:
    """Every uniform depth/width scaling of the space, as explicit configs with their default-objective
    scores (search.evaluate, the search's own scoring)."""
    from profiles.rowcosts import CostCache
    from search.evaluate import Budget, Measure, evaluate, make_scoring
    from search.settings import load_settings
    from search.space import build_space
    from zoo.config import load_config

    cfg = load_config(config)
    space = build_space(cfg, load_settings(cfg))
    cache = CostCache()
    measure = Measure(imgsz=imgsz)
    scoring = make_scoring(space, Budget(gflops=1e9), measure, cache)
    out = []
    for u in space.uniform_grid():
        ev = evaluate(space, u.params, budget=Budget(gflops=1e9), measure=measure, cache=cache, scoring=scoring)
        out.append({"depth": u.depth, "width": u.width, "score": ev.score, "config": space.resolve(u.params)})
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--config", default="yolov5s")
    ap.add_argument("--imgsz", type=int, default=320)
    ap.add_argument("--trials", type=int, default=2000)
    ap.add_argument("--share", type=float, default=0.8, help="B as a share of the config's measured median")
    ap.add_argument("--runs", type=int, default=30, help="timed runs of each whole-model measurement")
    a = ap.parse_args()
    if a.quick:
        a.trials, a.runs = min(a.trials, 30), min(a.runs, 5)
    results = Path(tempfile.mkdtemp(prefix="zoo-bench-")) if a.quick else RESULTS
    work = Path(tempfile.mkdtemp(prefix="zoo-auto-"))
    base_ms = profiled_ms(a.config, a.imgsz, a.runs)
    budget = round(a.share * base_ms, 2)
    cmd = [sys.executable, str(ROOT / "cli.py"), "search", a.config, "--imgsz", str(a.imgsz), "--threads", "1",
           "--budget-ms", str(budget), "--trials", str(a.trials), "-o", str(work / "run"), "--no-progress"]
    t0 = time.perf_counter()
    done = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT)
    wall = time.perf_counter() - t0
    report = json.loads((work / "run" / "report.json").read_text())
    best = report.get("best")
    best_ms = profiled_ms(str(work / "run" / "best.yaml"), a.imgsz, a.runs) if best else None
    import yaml
    scalings = []
    for s in uniform_scalings(a.config, a.imgsz):
        path = work / f"uniform-d{s['depth']:g}-w{s['width']:g}.yaml"
        path.write_text(yaml.safe_dump(s.pop("config"), sort_keys=False))
        s["measured_ms"] = profiled_ms(str(path), a.imgsz, a.runs)
        s["meets"] = s["measured_ms"] <= budget
        scalings.append(s)
        print(f"uniform d{s['depth']:g} w{s['width']:g}: {s['measured_ms']:.2f} ms, score {s['score']:.2f}",
              file=sys.stderr, flush=True)
    feasible = [s for s in scalings if s["meets"]]
    top_uniform = max(feasible, key=lambda s: s["score"]) if feasible else None
    beats = best is not None and (top_uniform is None or best["score"] > top_uniform["score"])
    row = [a.config, a.imgsz, f"{base_ms:.2f}", f"{budget:.2f}", a.trials, done.returncode, f"{wall / 60:.1f}",
           f"{best['score']:.2f}" if best else "-", f"{best_ms:.2f}" if best_ms else "-",
           "yes" if best_ms is not None and best_ms <= 1.05 * budget else "no",
           "-" if top_uniform is None else f"d{top_uniform['depth']:g} w{top_uniform['width']:g}: "
                                           f"{top_uniform['score']:.2f} ({top_uniform['measured_ms']:.2f} ms)",
           "yes" if beats else "no"]
    head = ["config", "px", "config ms", "B", "trials", "exit", "wall min", "best score", "best.yaml re-measured ms",
            "<= 1.05 B", "best uniform scaling meeting B (measured)", "beats it"]
    text = (f"`--budget-ms` search in the default mode (auto){' (QUICK SMOKE RUN)' if a.quick else ''}\n\n"
            + md_table(head, [row]))
    results.mkdir(parents=True, exist_ok=True)
    (results / "auto_search.json").write_text(json.dumps(
        {"quick": a.quick, "machine": machine(), "command": cmd, "wall_s": wall, "config_ms": base_ms,
         "budget_ms": budget, "best": best, "best_remeasured_ms": best_ms, "uniform": scalings, "beats": beats,
         "stderr_tail": done.stderr[-2000:], "report": report}, indent=2, default=str) + "\n")
    (results / "auto_search.md").write_text(text + "\n")
    print(text)
    print(f"wrote {results / 'auto_search.json'} and .md")


if __name__ == "__main__":
    main()
