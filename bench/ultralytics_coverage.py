"""How many of the model YAMLs an Ultralytics release ships build in zoo exactly as Ultralytics builds them.

For every model YAML under an Ultralytics `cfg/models` folder and each of its scales: does `zoo validate`
build it (the same checks, on the meta device), are its params equal to Ultralytics' in total and per
row, its GFLOPs at 640 px (2 x fvcore MACs, from the row plan's per-row costs) beside Ultralytics' own
`model.info()` figure (thop on stride-sized proxies, scaled), and the seconds zoo takes to build it.

Ultralytics' figures come from tests/data/ultralytics_reference.json, which bench/ultralytics_reference.py
writes in an environment that has Ultralytics (AGPL: never zoo's). The YAMLs are read from the folder
given, else from the Ultralytics that ZOO_REF_PYTHON names, else from one importable here.

    python bench/ultralytics_coverage.py [CFG_MODELS_DIR] [--reference FILE] [--no-gflops]

Writes bench/results/ultralytics_coverage.{json,md}.
"""
from __future__ import annotations

import argparse
import importlib.util
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).parent))

from _search_common import machine, md_table, write  # noqa: E402

REFERENCE = ROOT / "tests" / "data" / "ultralytics_reference.json"
FIND = "import ultralytics, pathlib; print(pathlib.Path(ultralytics.__file__).parent / 'cfg' / 'models')"


def find_models_dir(given: str | None) -> Path:
    """The folder named, else the reference Python's Ultralytics, else an importable one."""
    if given:
        return Path(given)
    ref = os.environ.get("ZOO_REF_PYTHON")
    if ref:
        env = {**os.environ, "PYTHONPATH": os.environ.get("ZOO_REF_PYTHONPATH", "")}
        out = subprocess.run([ref, "-c", FIND], capture_output=True, text=True, env=env, check=True)
        return Path(out.stdout.strip().splitlines()[-1])
    spec = importlib.util.find_spec("ultralytics")
    if spec is None or spec.origin is None:
        raise SystemExit("no cfg/models folder: give one, or set ZOO_REF_PYTHON to a Python with Ultralytics")
    return Path(spec.origin).parent / "cfg" / "models"


def measure(path: Path, scale: str | None, ref: dict[str, Any] | None, gflops: bool,
            costs: dict[Any, int]) -> dict[str, Any]:
    """One file at one scale: built or the error line, params against the reference, GFLOPs, seconds."""
    from profiles import build_checked
    from profiles.rowcosts import compute_row_cost
    from zoo.errors import ConfigError
    from zoo.warning_capture import capture_warnings

    t0 = time.perf_counter()
    try:
        with capture_warnings():
            model = build_checked(path, imgsz=640, scale=scale, device="meta")
    except ConfigError as e:
        return {"builds": False, "error": e.cli_message, "seconds": round(time.perf_counter() - t0, 2)}
    except Exception as e:  # noqa: BLE001 - a traceback breaks zoo's promise; the bench records which
        return {"builds": False, "error": f"CRASH {type(e).__name__}: {e}"[:300],
                "seconds": round(time.perf_counter() - t0, 2)}
    seconds = time.perf_counter() - t0
    rows = [sum(p.numel() for p in m.parameters()) for m in model.model]
    out: dict[str, Any] = {"builds": True, "params": sum(rows), "rows": rows, "seconds": round(seconds, 2)}
    if ref and "params" in ref:
        out["params_equal"] = out["params"] == ref["params"]
        out["rows_equal"] = rows == ref["rows"]
        out["first_row_differing"] = next((i for i, (a, b) in enumerate(zip(rows, ref["rows"])) if a != b),
                                          None if len(rows) == len(ref["rows"]) else min(len(rows), len(ref["rows"])))
    if gflops:
        try:
            macs = 0
            for rp in model.plan.rows:
                if rp.signature not in costs:
                    costs[rp.signature] = compute_row_cost(rp.signature).macs
                macs += costs[rp.signature]
            out["gflops"] = round(2 * macs / 1e9, 3)
        except Exception as e:  # noqa: BLE001 - a count that fails is recorded, the build still counts
            out["gflops_error"] = f"{type(e).__name__}: {e}"[:200]
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("models", nargs="?", help="an Ultralytics cfg/models folder (default: found)")
    ap.add_argument("--reference", default=str(REFERENCE), help="Ultralytics' figures (bench/ultralytics_reference.py)")
    ap.add_argument("--no-gflops", action="store_true", help="skip the GFLOPs count (builds and params only)")
    ap.add_argument("--out", default="ultralytics_coverage", help="name of the result files under bench/results/")
    args = ap.parse_args()
    import zoo.plugins  # noqa: F401 - the built-in families

    root = find_models_dir(args.models)
    reference = json.loads(Path(args.reference).read_text())
    before = machine()
    results: dict[str, dict[str, Any]] = {}
    costs: dict[Any, int] = {}
    files = sorted(root.rglob("*.yaml"))
    for i, path in enumerate(files, 1):
        rel = path.relative_to(root).as_posix()
        ref_file = reference["files"].get(rel, {})
        scales = list(ref_file) or [""]
        results[rel] = {s: measure(path, s or None, ref_file.get(s), not args.no_gflops, costs) for s in scales}
        print(f"[{i}/{len(files)}] {rel}: " + ", ".join(
            f"{s or '-'} {'=' if r.get('params_equal') else ('built' if r['builds'] else 'x')}"
            for s, r in results[rel].items()), file=sys.stderr)
    rows, exact_files = [], 0
    for rel, by_scale in results.items():
        ref_file = reference["files"].get(rel, {})
        exact = all(r.get("params_equal") and r.get("rows_equal") for r in by_scale.values())
        exact_files += exact
        for s, r in by_scale.items():
            ref = ref_file.get(s, {})
            g, rg = r.get("gflops"), ref.get("gflops")
            rows.append([rel, s or "-", "yes" if r["builds"] else "no",
                         f"{r['params']:,}" if r["builds"] else r["error"][:90].replace("|", "/"),
                         f"{ref['params']:,}" if "params" in ref else ref.get("error", "-")[:60],
                         "yes" if r.get("params_equal") and r.get("rows_equal") else
                         ("total only" if r.get("params_equal") else "no"),
                         "-" if g is None else f"{g:.2f}", "-" if not rg else f"{rg:.2f}",
                         "-" if g is None or not rg else f"{100 * (g - rg) / rg:+.1f}%", f"{r['seconds']:.2f}"])
    scale_total = sum(len(v) for v in results.values())
    scale_exact = sum(bool(r.get("params_equal") and r.get("rows_equal")) for v in results.values() for r in v.values())
    head = ["file", "scale", "builds", "zoo params", "Ultralytics params", "equal (total and rows)",
            "zoo GFLOPs", "Ultralytics GFLOPs", "diff", "build s"]
    summary = (f"Ultralytics {reference.get('ultralytics')}: {exact_files} of {len(results)} model YAMLs build with "
               f"params equal to Ultralytics' at every scale ({scale_exact} of {scale_total} file-scales), at 640 px. "
               "zoo GFLOPs: 2 x fvcore MACs at 640 px; Ultralytics': model.info() (thop on stride-sized proxies). "
               f"Load average {before['loadavg']} before, {machine()['loadavg']} after.")
    write(args.out, {"machine": before, "reference": {k: reference.get(k) for k in ("ultralytics", "torch", "command")},
                     "models_dir": str(root), "exact_files": exact_files, "files": len(results),
                     "exact_scales": scale_exact, "scales": scale_total, "results": results},
          "# Ultralytics coverage\n\n" + summary + "\n\n" + md_table(head, rows))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
