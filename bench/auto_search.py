"""The headline search: `zoo search yolov5s --imgsz 320 --threads 1 --budget-ms B --trials 2000` in the
default latency mode (`auto`: a table built as the search goes, rows timed in context), B = 80% of
yolov5s's own measured median (the median of `--rounds` fresh processes).

Reports: the search's wall time (target <= 10 min on a quiet 2-core machine), then best.yaml, the config
itself and every uniform depth/width scaling of it measured whole as `zoo profile` measures, in `--rounds`
interleaved rounds (each round one fresh process timing all of them in turn; a model's figure is the
median of its rounds). best.yaml must re-measure <= 1.05 B, and its default-objective score must beat every
scaling that meets B when measured (the fair comparison: measured, not predicted). This machine changes
speed by up to ~25% between minutes (bench/results/machine_drift.md), so B is judged twice: as given to
the search, and as 80% of the config measured in the same rounds as best.yaml (B now), the definition of
B on the machine as it runs at the check.
Writes bench/results/auto_search.{json,md} (`--tag T`: auto_search_T.*); `--quick` (a few trials, a coarse budget) writes to a
temporary folder. Run it alone on a quiet machine.
Usage: python bench/auto_search.py [--quick] [--config yolov5s] [--imgsz 320] [--trials 2000] [--share 0.8]
       [--rounds 3] [--tag T]
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


def profiled_rounds(sources: list[str], imgsz: int, runs: int, rounds: int) -> list[list[float]]:
    """Each source's whole-model median in each of `rounds` fresh `zoo profile` processes that time all
    the sources in turn (the order rotates each round, so no model is always first or last)."""
    got: list[list[float]] = [[] for _ in sources]
    for r in range(rounds):
        order = list(range(len(sources)))
        k = r % len(order)
        order = order[k:] + order[:k]
        cmd = [sys.executable, str(ROOT / "cli.py"), "profile", *[sources[i] for i in order], "--imgsz", str(imgsz),
               "--threads", "1", "--runs", str(runs), "--format", "json"]
        done = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, check=True)
        for i, rep in zip(order, json.loads(done.stdout)):
            got[i].append(rep["latency_ms"]["median"])
        print(f"round {r + 1}/{rounds}: {len(sources)} models timed", file=sys.stderr, flush=True)
    return got


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
    ap.add_argument("--rounds", type=int, default=3, help="interleaved rounds of the final measurements")
    ap.add_argument("--tag", default="", help="written as auto_search_TAG.{json,md} (a run kept beside the last)")
    a = ap.parse_args()
    if a.quick:
        a.trials, a.runs, a.rounds = min(a.trials, 30), min(a.runs, 5), min(a.rounds, 2)
    results = Path(tempfile.mkdtemp(prefix="zoo-bench-")) if a.quick else RESULTS
    work = Path(tempfile.mkdtemp(prefix="zoo-auto-"))
    load_before = machine()["loadavg"]
    import statistics

    base_rounds = profiled_rounds([a.config], a.imgsz, a.runs, a.rounds)[0]  # B from one timing is a coin toss
    base_ms = statistics.median(base_rounds)
    budget = round(a.share * base_ms, 2)
    cmd = [sys.executable, str(ROOT / "cli.py"), "search", a.config, "--imgsz", str(a.imgsz), "--threads", "1",
           "--budget-ms", str(budget), "--trials", str(a.trials), "-o", str(work / "run"), "--no-progress"]
    t0 = time.perf_counter()
    done = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT)
    wall = time.perf_counter() - t0
    report = json.loads((work / "run" / "report.json").read_text())
    best = report.get("best")
    import yaml
    scalings = uniform_scalings(a.config, a.imgsz)
    sources = [a.config] + ([str(work / "run" / "best.yaml")] if best else [])
    for s in scalings:
        path = work / f"uniform-d{s['depth']:g}-w{s['width']:g}.yaml"
        path.write_text(yaml.safe_dump(s.pop("config"), sort_keys=False))
        sources.append(str(path))
    timed = profiled_rounds(sources, a.imgsz, a.runs, a.rounds)
    base_now = statistics.median(timed[0])
    budget_now = round(a.share * base_now, 2)
    best_rounds = timed[1] if best else None
    best_ms = statistics.median(best_rounds) if best_rounds else None
    for s, ms in zip(scalings, timed[2:] if best else timed[1:]):
        s["rounds_ms"] = ms
        s["measured_ms"] = statistics.median(ms)
        s["meets"] = s["measured_ms"] <= budget  # B as given
        s["meets_now"] = s["measured_ms"] <= budget_now  # B now
        print(f"uniform d{s['depth']:g} w{s['width']:g}: {s['measured_ms']:.2f} ms, score {s['score']:.2f}",
              file=sys.stderr, flush=True)

    def top_of(key: str) -> dict | None:
        feasible = [s for s in scalings if s[key]]
        return max(feasible, key=lambda s: s["score"]) if feasible else None

    def beats(top: dict | None) -> bool:
        return best is not None and (top is None or best["score"] > top["score"])

    def shown(top: dict | None) -> str:
        return "-" if top is None else (f"d{top['depth']:g} w{top['width']:g}: {top['score']:.2f} "
                                        f"({top['measured_ms']:.2f} ms)")

    top_uniform, top_now = top_of("meets"), top_of("meets_now")
    rows = []
    for label, b, top in (("as given", budget, top_uniform), ("now", budget_now, top_now)):
        rows.append([a.config, a.imgsz, f"{base_ms:.2f}" if label == "as given" else f"{base_now:.2f}",
                     f"B {label}: {b:.2f}", a.trials, done.returncode, f"{wall / 60:.1f}",
                     f"{best['score']:.2f}" if best else "-",
                     f"{best_ms:.2f} ({best_ms / b:.3f} B)" if best_ms else "-",
                     "yes" if best_ms is not None and best_ms <= 1.05 * b else "no", shown(top),
                     "yes" if beats(top) else "no"])
    head = ["config", "px", "config ms", "B", "trials", "exit", "wall min", "best score",
            f"best.yaml re-measured ms (median of {a.rounds} rounds)", "<= 1.05 B",
            "best uniform scaling meeting B (measured)", "beats it"]
    text = (f"`--budget-ms` search in the default mode (auto){' (QUICK SMOKE RUN)' if a.quick else ''}; "
            f"load average {', '.join(f'{x:.2f}' for x in load_before)} before, "
            f"{', '.join(f'{x:.2f}' for x in machine()['loadavg'])} after\n\n"
            + md_table(head, rows) + "\n\nThe first row judges against B as given to the search (the config "
            f"measured before it, the median of {a.rounds} fresh processes: "
            f"{', '.join(f'{x:.2f}' for x in base_rounds)} ms); the second against B now, 80% of the config measured in the same rounds "
            f"as best.yaml and the scalings ({', '.join(f'{x:.2f}' for x in timed[0])} ms). "
            "A model's figure is the median of its rounds.")
    results.mkdir(parents=True, exist_ok=True)
    name = f"auto_search{'_' + a.tag if a.tag else ''}"
    (results / f"{name}.json").write_text(json.dumps(
        {"quick": a.quick, "machine": machine(), "command": cmd, "wall_s": wall, "config_ms": base_ms,
         "budget_ms": budget, "config_rounds_ms": base_rounds, "config_now_rounds_ms": timed[0], "budget_now_ms": budget_now, "best": best,
         "best_remeasured_ms": best_ms, "best_rounds_ms": best_rounds, "uniform": scalings,
         "beats": beats(top_uniform), "beats_now": beats(top_now),
         "stderr_tail": done.stderr[-2000:], "report": report}, indent=2, default=str) + "\n")
    (results / f"{name}.md").write_text(text + "\n")
    print(text)
    print(f"wrote {results / name}.json and .md")


if __name__ == "__main__":
    main()
