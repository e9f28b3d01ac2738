"""Does this machine keep one speed? One model timed in blocks of 10 passes for a minute, one process.

A latency table's accuracy is judged against measurements; if the machine itself switches between
speeds for tens of seconds at a time (a shared host, frequency or cache contention that the guest's
load average and steal time do not show), no prediction can agree with one measurement more often
than two measurements of one model agree. This records the block medians over time, the fastest and
slowest stretch, and the CPU time beside the wall time (a slow stretch with the same CPU time per pass
is the host, not this process waiting).

Writes bench/results/machine_drift.{json,md}. Run it alone.
Usage: python bench/machine_drift.py [--config yolov5s] [--imgsz 320] [--seconds 60]
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).parent))

import torch  # noqa: E402

from _search_common import RESULTS, machine, md_table  # noqa: E402
from zoo.builder import build_model  # noqa: E402
from zoo.config import load_config  # noqa: E402

BLOCK = 10  # passes per block


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--config", default="yolov5s")
    ap.add_argument("--imgsz", type=int, default=320)
    ap.add_argument("--seconds", type=float, default=60.0)
    a = ap.parse_args()
    torch.set_num_threads(1)
    load0 = os.getloadavg()
    model = build_model(load_config(a.config), device="cpu").eval()
    x = torch.randn(1, 3, a.imgsz, a.imgsz)
    blocks = []
    with torch.inference_mode():
        for _ in range(3):
            model(x)
        t0 = time.time()
        while time.time() - t0 < a.seconds:
            wall, cpu = [], []
            for _ in range(BLOCK):
                w, c = time.perf_counter(), time.process_time()
                model(x)
                wall.append((time.perf_counter() - w) * 1e3)
                cpu.append((time.process_time() - c) * 1e3)
            blocks.append({"t_s": round(time.time() - t0, 2), "wall_ms": statistics.median(wall),
                           "cpu_ms": statistics.median(cpu)})
    load1 = os.getloadavg()
    walls = [b["wall_ms"] for b in blocks]
    q = statistics.quantiles(walls, n=10)
    ratio = max(walls) / min(walls)
    rows = [[f"{b['t_s']:.1f}", f"{b['wall_ms']:.2f}", f"{b['cpu_ms']:.2f}"] for b in blocks[::max(1, len(blocks) // 40)]]
    text = (f"Machine drift: {a.config} at {a.imgsz} px, 1 thread, blocks of {BLOCK} passes for {a.seconds:g} s in "
            f"one process; load average {load0[0]:.2f} before, {load1[0]:.2f} after\n\n"
            f"{len(blocks)} blocks: median {statistics.median(walls):.2f} ms, 10th percentile {q[0]:.2f}, 90th "
            f"{q[-1]:.2f}, fastest {min(walls):.2f}, slowest {max(walls):.2f} (x{ratio:.2f}); CPU time / wall time "
            f"per block: median {statistics.median(b['cpu_ms'] / b['wall_ms'] for b in blocks):.3f}, lowest "
            f"{min(b['cpu_ms'] / b['wall_ms'] for b in blocks):.3f} (near 1: the process ran the whole time, so a "
            "slow stretch is the core running slower, not the process waiting)\n\n"
            + md_table(["t s", "block median ms (wall)", "block median ms (CPU)"], rows))
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "machine_drift.json").write_text(json.dumps(
        {"config": a.config, "imgsz": a.imgsz, "blocks": blocks, "loadavg_before": load0, "loadavg_after": load1,
         "machine": machine()}, indent=2) + "\n")
    (RESULTS / "machine_drift.md").write_text(text + "\n")
    print(text)


if __name__ == "__main__":
    main()
