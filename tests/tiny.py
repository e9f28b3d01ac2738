"""Tiny configs several test files search or tabulate (one copy; loaded by path: tests/ is not a package).

SEARCH: seven backbone rows with three widths, small enough that a search trial takes milliseconds;
LUT: five rows and two widths, what a latency-table test can afford to time; CLI_FAST: `zoo search`
flags that cut every protocol to the minimum.
"""
from __future__ import annotations

ANCHORS = [[10, 13, 16, 30, 33, 23], [30, 61, 62, 45, 59, 119]]
SEARCH = {"nc": 2, "family": "yolov5", "depth_multiple": 1.0, "width_multiple": 1.0, "anchors": ANCHORS,
          "search": {"widths": [0.5, 0.75, 1.0]},
          "backbone": [[-1, 1, "Conv", [16, 3, 2]], [-1, 1, "Conv", [32, 3, 2]], [-1, 2, "C3", [32]],
                       [-1, 1, "Conv", [48, 3, 2]], [-1, 2, "C3", [48]], [-1, 1, "Conv", [64, 3, 2]],
                       [-1, 1, "SPPF", [64, 5]]],
          "head": [[[4, 6], 1, "Detect", ["nc", "anchors"]]]}
LUT = {"nc": 2, "family": "yolov5", "depth_multiple": 1.0, "width_multiple": 1.0, "anchors": ANCHORS,
       "search": {"widths": [0.5, 1.0]},
       "backbone": [[-1, 1, "Conv", [16, 3, 2]], [-1, 1, "Conv", [32, 3, 2]], [-1, 2, "C3", [32]],
                    [-1, 1, "Conv", [32, 3, 2]], [-1, 1, "SPPF", [32, 5]]],
       "head": [[[2, 4], 1, "Detect", ["nc", "anchors"]]]}


def cli_fast(top_k: int = 1) -> list[str]:
    return ["--imgsz", "64", "--runs", "2", "--warmup-s", "0", "--top-k", str(top_k), "--no-progress"]
