"""How well an objective predicted trained accuracy, as bench/objective_validity.py measured it on YOLOBench.

A search's report states the objective it used and this measurement next to it: the mean within-resolution
Kendall tau against COCO mAP_0.5:0.95 and the mean regret (mAP points below the best model under each
openvino and raspi4 latency budget, at one size and with the size as a choice), on yolo5+yolo8 (the group
the default objective was chosen on) and on every mapped model. The numbers are read from the benchmark's
results file, never recomputed; without that file (an installed package has no bench/), or for an
objective it did not measure, there is no validity to state and `validity` returns None.
"""
from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

ROOT = Path(__file__).resolve().parents[2]
RESULTS = ROOT / "bench" / "results" / "objective_validity.json"
GROUPS = ("yolo5+yolo8", "pooled")
REGRET = "mean regret in mAP points under the openvino and raspi4 latency budgets, one size and size choice"


@dataclass(frozen=True)
class GroupValidity:
    models: int
    kendall: float  # mean over the resolutions of Kendall tau-b against mAP_0.5:0.95
    regret: float  # REGRET

    def as_dict(self) -> dict[str, Any]:
        return {"models": self.models, "kendall": self.kendall, "regret": self.regret}


@dataclass(frozen=True)
class Validity:
    objective: str
    source: str  # the results file read
    metric: str
    groups: Mapping[str, GroupValidity]

    def as_dict(self) -> dict[str, Any]:
        return {"source": self.source, "metric": self.metric, "regret_is": REGRET,
                **{g: v.as_dict() for g, v in self.groups.items()}}


def validity(name: str, path: str | Path | None = None) -> Validity | None:
    """`name`'s measured validity from the results file (default bench/results/objective_validity.json);
    None when the file is absent or unreadable, or when it did not measure `name`."""
    p = Path(path) if path is not None else RESULTS
    try:
        data = json.loads(p.read_text(encoding="utf-8"))
        groups = {}
        for g in GROUPS:
            group = data["results"][g]
            entry = group["objectives"].get(name)
            if entry is None:
                return None
            groups[g] = GroupValidity(int(group["models"]), _number(entry["kendall"]), _number(entry["key_regret"]))
        return Validity(name, _shown(p), str(data.get("metric", "")), groups)
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return None


def validity_report(name: str, path: str | Path | None = None) -> dict[str, Any] | None:
    """What a search's report.json states under objective.validity: `validity(name)` as JSON, or None."""
    v = validity(name, path)
    return v.as_dict() if v is not None else None


def _shown(p: Path) -> str:
    """The file as the report names it: relative to the checkout when inside it."""
    try:
        return p.resolve().relative_to(ROOT).as_posix()
    except ValueError:
        return str(p)


def _number(x: Any) -> float:
    v = float(x)
    if not math.isfinite(v):
        raise ValueError(f"not a finite number: {x!r}")
    return v
