"""Reference figures of every model YAML an installed Ultralytics ships: params per row and in total,
and Ultralytics' own GFLOPs (model.info()'s get_flops at 640 px), for each scale.

Run with a Python that has Ultralytics (never the project's environment: Ultralytics is AGPL and is
no dependency of zoo); it imports nothing of zoo. The JSON it writes is what the tests check against:

    PYTHONPATH=/path/to/torchvision-stub /path/to/ref/bin/python bench/ultralytics_reference.py \
        -o tests/data/ultralytics_reference.json
"""
from __future__ import annotations

import argparse
import contextlib
import copy
import io
import json
import sys
import time
from pathlib import Path


def model_class(tasks, path: Path, d: dict):
    """The model class Ultralytics' own loader picks for this file (by name, then by head)."""
    name = path.stem
    if "rtdetr" in name:
        return tasks.RTDETRDetectionModel
    if "yoloe" in name:
        return tasks.YOLOESegModel if "seg" in name else tasks.YOLOEModel
    if "world" in name:
        return tasks.WorldModel
    task = tasks.guess_model_task(d)
    return {"detect": tasks.DetectionModel, "segment": tasks.SegmentationModel, "pose": tasks.PoseModel,
            "obb": tasks.OBBModel, "classify": tasks.ClassificationModel, "depth": tasks.DepthModel,
            "semantic": tasks.SemanticSegmentationModel}[task]


def main() -> int:
    import torch
    import ultralytics
    import ultralytics.nn.tasks as tasks
    from ultralytics.utils.torch_utils import get_flops

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("root", nargs="?", help="cfg/models folder (default: the installed Ultralytics')")
    ap.add_argument("-o", "--out", required=True)
    args = ap.parse_args()
    root = Path(args.root or Path(ultralytics.__file__).parent / "cfg" / "models")
    out: dict = {"ultralytics": ultralytics.__version__, "torch": torch.__version__,
                 "command": "PYTHONPATH=<torchvision stub> <ref python> bench/ultralytics_reference.py -o " + args.out,
                 "files": {}}
    for path in sorted(root.rglob("*.yaml")):
        rel = path.relative_to(root).as_posix()
        base = tasks.yaml_model_load(path)
        scales = list(base.get("scales") or {}) or [None]
        entry: dict = {}
        for s in scales:
            d = copy.deepcopy(base)
            if s is not None:
                d["scale"] = s
            t0 = time.perf_counter()
            try:
                with contextlib.redirect_stdout(io.StringIO()):
                    m = model_class(tasks, path, d)(d, verbose=False)
                rows = [sum(p.numel() for p in layer.parameters()) for layer in m.model]
                try:
                    gflops = round(get_flops(m, 640), 4)
                except Exception as e:  # noqa: BLE001 - a figure Ultralytics cannot count is recorded as missing
                    gflops = None
                entry[s or ""] = {"params": sum(p.numel() for p in m.parameters()), "rows": rows,
                                  "gflops": gflops, "seconds": round(time.perf_counter() - t0, 2)}
            except Exception as e:  # noqa: BLE001 - recorded: a file Ultralytics itself cannot build here
                entry[s or ""] = {"error": f"{type(e).__name__}: {e}"[:300]}
        out["files"][rel] = entry
        print(rel, {k: v.get("params", v.get("error")) for k, v in entry.items()}, file=sys.stderr)
    Path(args.out).write_text(json.dumps(out, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
