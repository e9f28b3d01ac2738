"""`zoo profile CFG --no-latency` against the floor of the same job, timed side by side in one run.

The floor is one process that imports torch and zoo, builds the model and runs one eval forward pass at
640 px: what any profiler of the model must at least do. `zoo profile` adds the row plan, fvcore's one
counting pass (a traced forward), the shape lint and the table. Both run as fresh processes, alternated,
--repeats times; the medians of wall time (and the processes' CPU time, as a cross-check) are compared.
Usage: python bench/profile_speed.py [--repeats 3]
"""
from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from _search_common import machine, md_table, write  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
CONFIGS = ("yolov5l", "yolov8l", "rtdetr-l")
FLOOR = """
import sys, torch, zoo
model = zoo.build_model(sys.argv[1]).eval()
with torch.no_grad():
    model(torch.zeros(1, model.config.ch, 640, 640))
"""


def timed(cmd: list[str]) -> tuple[float, float]:
    """(wall s, CPU s of the child) of one run of `cmd`."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    subprocess.run(cmd, cwd=ROOT, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeats", type=int, default=3)
    a = ap.parse_args()
    load0 = os.getloadavg()
    zoo_cli = [sys.executable, "-c", "import sys, cli; sys.exit(cli.main(sys.argv[1:]))"]
    results, rows = [], []
    for name in CONFIGS:
        runs: dict[str, list[tuple[float, float]]] = {"floor": [], "profile": []}
        for _ in range(a.repeats):
            runs["floor"].append(timed([sys.executable, "-c", FLOOR, name]))
            runs["profile"].append(timed([*zoo_cli, "profile", name, "--no-latency"]))
        med = {k: (statistics.median(w for w, _ in v), statistics.median(c for _, c in v)) for k, v in runs.items()}
        ratio = med["profile"][0] / med["floor"][0]
        results.append({"config": name, "floor_wall_s": med["floor"][0], "floor_cpu_s": med["floor"][1],
                        "profile_wall_s": med["profile"][0], "profile_cpu_s": med["profile"][1], "ratio": ratio,
                        "runs": runs})
        rows.append([name, f"{med['floor'][0]:.2f}", f"{med['floor'][1]:.2f}", f"{med['profile'][0]:.2f}",
                     f"{med['profile'][1]:.2f}", f"{ratio:.2f}x"])
        print(rows[-1], flush=True)
    load1 = os.getloadavg()
    table = (f"`zoo profile CFG --no-latency` vs the floor (import torch and zoo, build, one eval forward at "
             f"640 px), fresh processes, median of {a.repeats}, torch's default threads; load average "
             f"{load0[0]:.2f} before, {load1[0]:.2f} after\n\n"
             + md_table(["config", "floor wall s", "floor cpu s", "profile wall s", "profile cpu s",
                         "profile / floor (wall)"], rows))
    write("profile_speed", {"results": results, "repeats": a.repeats, "loadavg_before": load0, "loadavg_after": load1,
                            "machine": machine()}, table)


if __name__ == "__main__":
    main()
