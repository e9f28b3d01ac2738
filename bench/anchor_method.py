"""Does the way a model is timed move its figure? The anchor (`zoo lut anchor`: a few models, the table's
model protocol, 3 rounds) against the judge's interleaved rounds (bench/lut_accuracy.py: a hundred
candidates, ROUND_PROTOCOL each turn), on the same few models, in phases that alternate in one process.

Why: a fresh yolov5s table's anchor said x0.911 before the candidates and x0.914 after, while the same five
models timed inside the candidates' rounds gave x0.843 (bench/results/lut_accuracy_torch320_yolov5s_fresh_levels.md).
If the two methods differ on the same minutes, the gap is the method's, not the machine's drift.

Each phase: `anchor` times the K models as measure_anchor does; `rounds` times the K models among N
candidates as measure_rounds does (order shuffled per round). The record: each model's median per phase,
and per alternation the rounds' figure over the anchor's (the median over the models).

    python bench/anchor_method.py [--config yolov5s] [--imgsz 320] [--models 5] [--candidates 100]
        [--alternations 3] [--tag NAME]
"""
from __future__ import annotations

import argparse
import json
import os
import random
import resource
import statistics
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).parent))

from _search_common import RESULTS, machine, md_table  # noqa: E402
from lut_accuracy import ROUND_PROTOCOL  # noqa: E402
from profiles.backends import get_backend  # noqa: E402
from profiles.backends.base import model_timer, random_inputs  # noqa: E402
from profiles.lutanchor import ANCHOR_ROUNDS  # noqa: E402
from profiles.lutbuild import MODEL_PROTOCOL, warm_up  # noqa: E402
from search.settings import load_settings  # noqa: E402
from search.space import build_space  # noqa: E402
from zoo.builder import build_from_plan  # noqa: E402
from zoo.config import load_config  # noqa: E402


def cpu_s() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def anchor_phase(timers: list) -> tuple[list[float], float, float]:
    """As measure_anchor: ANCHOR_ROUNDS rounds, each starting one model later; each model's median of its
    rounds' medians (MODEL_PROTOCOL)."""
    got: list[list[float]] = [[] for _ in timers]
    w0, c0 = time.perf_counter(), cpu_s()
    for r in range(ANCHOR_ROUNDS):
        for j in range(len(timers)):
            i = (j + r) % len(timers)
            got[i].append(timers[i](MODEL_PROTOCOL).median_ms)
    return [statistics.median(g) for g in got], time.perf_counter() - w0, cpu_s() - c0


def rounds_phase(timers: list, k: int, rounds: int, rng: random.Random) -> tuple[list[float], float, float]:
    """As measure_rounds: every timer in turn (ROUND_PROTOCOL), order shuffled per round; the first `k`
    timers' medians of their rounds' medians."""
    got: list[list[float]] = [[] for _ in range(k)]
    order = list(range(len(timers)))
    w0, c0 = time.perf_counter(), cpu_s()
    for _ in range(rounds):
        rng.shuffle(order)
        for i in order:
            m = timers[i](ROUND_PROTOCOL).median_ms
            if i < k:
                got[i].append(m)
    return [statistics.median(g) for g in got], time.perf_counter() - w0, cpu_s() - c0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--config", default="yolov5s")
    ap.add_argument("--imgsz", type=int, default=320)
    ap.add_argument("--models", type=int, default=5)
    ap.add_argument("--candidates", type=int, default=100)
    ap.add_argument("--alternations", type=int, default=3)
    ap.add_argument("--rounds", type=int, default=1, help="rounds over all models per rounds phase")
    ap.add_argument("--tag", default="")
    a = ap.parse_args()
    load0 = os.getloadavg()[0]
    backend = get_backend("torch", threads=1, device="cpu")
    cfg = load_config(a.config)
    space = build_space(cfg, load_settings(cfg))
    plans = [space.plan(p, imgsz=a.imgsz) for p in space.sample(a.models, seed=2)]
    plans += [space.plan(p, imgsz=a.imgsz) for p in space.sample(a.candidates, seed=1)]
    shape = (1, cfg.ch, a.imgsz, a.imgsz)
    timers = []
    for plan in plans:
        model = build_from_plan(plan)
        if not timers:
            warm_up(backend, (model, random_inputs(shape)))
        timers.append(model_timer(backend, model, shape))
    rng = random.Random(0)
    phases: list[dict[str, Any]] = []
    for alt in range(a.alternations):
        for kind in ("anchor", "rounds"):
            if kind == "anchor":
                med, wall, cpu = anchor_phase(timers[:a.models])
            else:
                med, wall, cpu = rounds_phase(timers, a.models, a.rounds, rng)
            phases.append({"alternation": alt + 1, "kind": kind, "medians_ms": med, "wall_s": wall, "cpu_s": cpu})
            print(f"{alt + 1} {kind}: {' / '.join(f'{m:.2f}' for m in med)} ({wall:.0f} s, cpu {cpu:.0f} s)",
                  file=sys.stderr, flush=True)
    ratios = []
    for alt in range(a.alternations):
        anc, rnd = (p["medians_ms"] for p in phases[2 * alt:2 * alt + 2])
        ratios.append(statistics.median(r / x for r, x in zip(rnd, anc)))
    # the rounds phase against the mean of the anchor phases either side: drift between phases cancels
    between = []
    for alt in range(a.alternations - 1):
        before, rnd, after = (phases[2 * alt + k]["medians_ms"] for k in range(3))
        between.append(statistics.median(r / ((b + f) / 2) for r, b, f in zip(rnd, before, after)))
    load1 = os.getloadavg()[0]
    record = {"config": a.config, "imgsz": a.imgsz, "models": a.models, "candidates": a.candidates,
              "rounds": a.rounds, "anchor_protocol": MODEL_PROTOCOL.as_dict(), "anchor_rounds": ANCHOR_ROUNDS,
              "round_protocol": ROUND_PROTOCOL.as_dict(), "phases": phases, "rounds_over_anchor": ratios,
              "rounds_over_anchors_either_side": between, "load": [load0, load1], "machine": machine()}
    name = f"anchor_method{'_' + a.tag if a.tag else ''}"
    (RESULTS / f"{name}.json").write_text(json.dumps(record, indent=1))
    rows = [[p["alternation"], p["kind"], " / ".join(f"{m:.2f}" for m in p["medians_ms"]), f"{p['wall_s']:.0f}",
             f"{p['cpu_s'] / p['wall_s']:.3f}"] for p in phases]
    text = (f"Anchor method: the same {a.models} models ({a.config}, {a.imgsz} px, 1 thread) timed as the anchor "
            f"does ({ANCHOR_ROUNDS} rounds of the model protocol) and inside rounds over {a.candidates} candidates "
            f"as the judge does ({a.rounds} round(s) of ROUND_PROTOCOL per phase), alternating; load average "
            f"{load0:.2f} before, {load1:.2f} after\n\n"
            + md_table(["alternation", "phase", "each model's median ms", "wall s", "CPU / wall"], rows)
            + "\n\nRounds over anchor (median over the models), per alternation: "
            + ", ".join(f"x{r:.3f}" for r in ratios)
            + "; each rounds phase over the mean of the anchor phases either side: "
            + (", ".join(f"x{r:.3f}" for r in between) or "n/a") + "\n")
    (RESULTS / f"{name}.md").write_text(text)
    print(text)


if __name__ == "__main__":
    main()
