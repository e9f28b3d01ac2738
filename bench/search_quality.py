"""Search quality: the best score at 1,000 trials under one GFLOPs budget, evolution vs NSGA-II vs TPE vs
random, 5 seeds each (the default sampler's ratio to random is printed), against every uniform scaling of the space that meets the same budget.

The budget is GFLOPs (80% of the base's at --imgsz), so a trial costs its plan and cached row costs only
and the comparison measures the samplers. The uniform scalings are every (depth multiple, width multiple)
of the space's grid (search.space.SearchSpace.uniform_grid), scored with the same objective and checked
against the same budgets (the objective's default depth budget included).
With --sizes 256,320,384 the input size is a searched dimension too (one GFLOPs budget, 80% of the
base's at --imgsz): the uniform scalings are then every (size, depth, width) of the grid, and the results
go to search_quality_sizes.
--enqueue uniform starts every study as `zoo search` does, with the feasible uniform scalings (at every
searched size) enqueued before the sampler's own trials, so the best can only beat them by improving
on them; --enqueue base (the default without --sizes) enqueues the base alone and measures the samplers
from nothing. Results of a base-only run with --sizes go to search_quality_sizes_base.
Usage: python bench/search_quality.py [--config yolov5s --trials 1000 --seeds 5] [--sizes 256,320,384]
       [--enqueue base|uniform]
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import optuna  # noqa: E402
import torch  # noqa: E402

import zoo  # noqa: E402
from profiles.rowcosts import CostCache  # noqa: E402
from search import Budget, Measure, SearchOptions, feasible_trials, load_settings, trial_score  # noqa: E402
from search.evaluate import CandidateError, evaluate, make_scoring  # noqa: E402
from search.run import run_study  # noqa: E402
from search.samplers import default_sampler  # noqa: E402
from search.space import build_space  # noqa: E402

sys.path.insert(0, str(Path(__file__).parent))
from _search_common import machine, md_table, write  # noqa: E402
from search_throughput import base_costs  # noqa: E402

SAMPLERS = ("evolution", "nsga2", "tpe", "random")


def uniform_scalings(name: str, budget: Budget, measure: Measure,
                     sizes: list[int] | None = None) -> list[tuple[int, float, float, float]]:
    """(size, depth, width, score) of every uniform scaling of the space (at every searched size) that
    meets the budget."""
    cfg = zoo.load_config(name)
    cache = CostCache()
    space = build_space(cfg, load_settings(cfg, imgsz=sizes), prober=cache)
    scoring = make_scoring(space, budget, measure, cache)
    out = []
    for u in space.uniform_grid():
        try:
            ev = evaluate(space, u.params, budget=budget, measure=measure, cache=cache, scoring=scoring, prober=cache)
        except CandidateError:
            continue
        if ev.feasible:
            out.append((u.imgsz or measure.imgsz, u.depth, u.width, ev.score))
    return sorted(out, key=lambda x: -x[3])


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--config", default="yolov5s")
    ap.add_argument("--imgsz", type=int, default=320)
    ap.add_argument("--trials", type=int, default=1000)
    ap.add_argument("--seeds", type=int, default=5)
    ap.add_argument("--fraction", type=float, default=0.8)
    ap.add_argument("--sizes", type=lambda t: [int(x) for x in t.split(",")], default=None,
                    help="search the input size among these too (e.g. 256,320,384)")
    ap.add_argument("--samplers", type=lambda t: tuple(t.split(",")), default=SAMPLERS)
    ap.add_argument("--enqueue", choices=("base", "uniform"), default=None,
                    help="what each study starts from: the base alone, or the feasible uniform scalings as "
                         "`zoo search` enqueues them (default: uniform with --sizes, base without)")
    a = ap.parse_args()
    enqueue = a.enqueue or ("uniform" if a.sizes else "base")
    torch.set_num_threads(1)
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    load0 = os.getloadavg()
    _, gflops = base_costs(a.config, a.imgsz)
    budget = Budget(gflops=round(a.fraction * gflops, 2))
    measure = Measure(imgsz=a.imgsz)
    uniform = uniform_scalings(a.config, budget, measure, a.sizes)
    best_uniform = uniform[0][3] if uniform else float("-inf")
    cfg = zoo.load_config(a.config)
    results: dict[str, list[float]] = {}
    times: dict[str, list[float]] = {}
    t0 = time.time()
    objective = None
    for sampler in a.samplers:
        for seed in range(a.seeds):
            with tempfile.TemporaryDirectory() as tmp:
                opts = SearchOptions(budget=budget, measure=measure, settings=load_settings(cfg, imgsz=a.sizes),
                                     trials=a.trials,
                                     sampler=sampler, seed=seed,
                                     max_uniform=0 if enqueue == "base" else None,
                                     storage=str(Path(tmp) / "journal.log"), study_name="q", out=tmp)
                s0 = time.perf_counter()
                info = run_study(cfg, opts)
                times.setdefault(sampler, []).append(time.perf_counter() - s0)
                objective = info.scoring.objective.name
                ok = feasible_trials(info.study.get_trials(deepcopy=False))
                results.setdefault(sampler, []).append(trial_score(ok[0]) if ok else float("nan"))
            print(sampler, seed, f"{results[sampler][-1]:.4f}", f"{times[sampler][-1]:.0f} s", flush=True)
    rows = [[s, a.trials, *(f"{v:.4f}" for v in vs), f"{statistics.mean(vs):.4f}", f"{statistics.pstdev(vs):.4f}",
             f"{sum(v > best_uniform for v in vs)}/{len(vs)}", f"{statistics.mean(times[s]):.0f}"]
            for s, vs in results.items()]
    head = ["sampler", "trials", *(f"seed {i}" for i in range(a.seeds)), "mean", "sd",
            "seeds above every uniform scaling", "s per study"]
    chosen = default_sampler(("score",), sizes_searched=bool(a.sizes))
    default = chosen if chosen in results else next(iter(results))
    ratio = (statistics.mean(results[default]) / statistics.mean(results["random"])
             if "random" in results else float("nan"))
    uni_rows = [[str(z), f"{d:g}", f"{w:g}", f"{s:.4f}"] for z, d, w, s in uniform]
    sizes = f"sizes {','.join(map(str, a.sizes))} searched, " if a.sizes else ""
    load1 = os.getloadavg()
    table = (f"Search quality on {a.config} at {a.imgsz} px ({sizes}budget from {a.imgsz} px): best {objective} "
             f"under {budget.gflops:g} GFLOPs "
             f"({a.fraction:.0%} of the base), {a.trials} trials, {a.seeds} seeds, "
             + ("only the base enqueued (uniform scalings not enqueued)" if enqueue == "base" else
                "the feasible uniform scalings enqueued first, as `zoo search` does (up to trials // 4)")
             + f"; load average {load0[0]:.2f} before, {load1[0]:.2f} after\n\n"
             + md_table(head, rows)
             + f"\n\n{default} (the default sampler) / random mean best score: {ratio:.4f}; best uniform scaling within the budget: "
               f"{best_uniform:.4f}\n\nUniform scalings of the space within the budget (size, depth multiple, width "
               f"multiple of the base, score):\n\n" + md_table(["size", "depth", "width", "score"], uni_rows)
             + f"\n\n{time.time() - t0:.0f} s in all")
    name = "search_quality_sizes" if a.sizes else "search_quality"
    if a.sizes and enqueue == "base":
        name += "_base"
    elif not a.sizes and enqueue == "uniform":
        name += "_uniform"
    write(name,
          {"config": a.config, "imgsz": a.imgsz, "sizes": a.sizes, "trials": a.trials, "budget": budget.as_dict(),
                             "objective": objective, "enqueue": enqueue, "scores": results, "seconds": times,
                             "uniform": [{"imgsz": z, "depth": d, "width": w, "score": s} for z, d, w, s in uniform],
                             "default_sampler": default, "default_over_random": ratio, "loadavg_before": load0, "loadavg_after": load1,
                             "machine": machine()}, table)


if __name__ == "__main__":
    main()
