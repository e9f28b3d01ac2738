"""What a study says it is, and whether a run may resume it.

A study made by `zoo search` records its base config, scale, settings, budgets, measurement, objectives
and sampler as user attrs (enough to rebuild its space and export any trial later). Its default name
covers the budgets, the objective(s) and the sampler; a run that resumes a study by name must agree with
the record on everything that changes what a trial means, or it is refused naming each difference.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

import optuna

from zoo.config import Config, config_to_mapping
from zoo.errors import ConfigError, printable

from .evaluate import Budget
from .samplers import default_sampler
from .worker import SearchOptions

BUDGET_TAGS = (("latency_ms", "ms"), ("gflops", "gflops"), ("params_m", "mparams"), ("max_layers", "layers"))


def default_study_name(cfg: Config, imgsz: int | list[int] | str, budget: Budget, *, objective: str = "feature_entropy",
                       sampler: str | None = None, objectives: tuple[str, ...] = ("score",), deploy: bool = False) -> str:
    """`<config>-<imgsz>-<every budget>-<objective>-<sampler>[-pareto][-deploy]`, e.g.
    `yolov5s-320-40ms-5gflops-feature_entropy-nsga2`: searches that differ in any of these never share a
    study by default (other differences are caught by comparing the study's record). Searched sizes are
    joined by `_` (`256_320_384`), a range keeps its colons' place with `to`/`by` (`256to416by32`)."""
    b = budget.as_dict()
    tags = [f"{b[k]:g}{unit}" for k, unit in BUDGET_TAGS if b[k] is not None]
    extra = (["pareto"] if "latency" in objectives else []) + (["deploy"] if deploy else [])
    size = "_".join(map(str, imgsz)) if isinstance(imgsz, list) else \
        str(imgsz).replace(":", "to", 1).replace(":", "by", 1)
    searched = isinstance(imgsz, list) or ":" in str(imgsz)
    sampler = sampler or default_sampler(objectives, sizes_searched=searched)
    return "-".join([Path(cfg.name).stem, size, *tags, objective, sampler, *extra])


def study_record(cfg: Config, options: SearchOptions) -> dict[str, Any]:
    """What a study says it is (its user attrs): enough to rebuild its space and export any trial."""
    return {"zoo:config": config_to_mapping(cfg), "zoo:scale": cfg.scale.name, "zoo:name": cfg.name,
            "zoo:settings": options.settings.as_dict(), "zoo:budget": options.budget.as_dict(),
            "zoo:measure": options.measure.as_dict(), "zoo:objectives": list(options.objectives),
            "zoo:sampler": options.sampler}


# what a resumed study must agree on: (record key, sub-key or None, parameter, command-line flag)
COMPARED = (("zoo:config", None, "config", "the base config"), ("zoo:scale", None, "scale", "--scale"),
            ("zoo:settings", None, "settings", "the search space (search: block, --space, --imgsz sizes, "
                                               "--stage-weights, --scope, --objective)"),
            ("zoo:budget", "latency_ms", "latency_ms", "--budget-ms"), ("zoo:budget", "gflops", "gflops", "--budget-gflops"),
            ("zoo:budget", "params_m", "params_m", "--budget-params"),
            ("zoo:budget", "max_layers", "max_layers", "--max-layers"),
            ("zoo:objectives", None, "objectives", "--objectives"), ("zoo:sampler", None, "sampler", "--sampler"),
            ("zoo:measure", "imgsz", "imgsz", "--imgsz"), ("zoo:measure", "device", "device", "--device"),
            ("zoo:measure", "threads", "threads", "--threads"), ("zoo:measure", "deploy", "deploy", "--deploy"))


@dataclass(frozen=True)
class Difference:
    param: str  # the API's name (SearchOptions field or Budget/Measure key)
    flag: str  # the command line's
    study: Any  # None: a whole part (config, settings) differs
    run: Any

    def text(self, name: str) -> str:
        if self.study is None and self.run is None:
            return name
        return f"{name} {_shown(self.study)} (this run: {_shown(self.run)})"


def record_differences(stored: Mapping[str, Any], wanted: Mapping[str, Any]) -> list[Difference]:
    """Every compared part of a study record that differs from this run's (parts a stored record lacks
    are not compared)."""
    def norm(v: Any) -> Any:
        return json.loads(json.dumps(v, sort_keys=True, default=str))

    out = []
    for key, sub, param, flag in COMPARED:
        if key not in stored:
            continue
        old, new = stored[key], wanted[key]
        if sub is not None:
            if not isinstance(old, Mapping) or sub not in old:
                continue
            old, new = old[sub], new[sub]
        if norm(old) != norm(new):
            whole = key in ("zoo:config", "zoo:settings")
            out.append(Difference(param, flag, None if whole else old, None if whole else new))
    return out


def _shown(v: Any) -> str:
    return ",".join(map(str, v)) if isinstance(v, (list, tuple)) else str(v)


class StudyMismatch(ConfigError):
    """A study exists under this name with other settings: resuming it would mix two searches."""

    def __init__(self, where: str, study: str, diffs: list[Difference]) -> None:
        self.study, self.diffs = study, diffs
        super().__init__(where, self._text(cli=False))

    def _text(self, *, cli: bool) -> str:
        parts = "; ".join(d.text(d.flag if cli else d.param) for d in self.diffs)
        name = "--study-name" if cli else "study_name"
        return (f"study {self.study!r} was made with other settings: {parts}; run with the study's settings to "
                f"resume it, or choose another {name}")

    @property
    def cli_message(self) -> str:
        return printable(f"{self.where}: {self._text(cli=True)}")


def check_record(study: optuna.Study, cfg: Config, options: SearchOptions, where: str) -> None:
    """Refuse (StudyMismatch) to resume a study made with other settings, naming each difference."""
    diffs = record_differences(study.user_attrs, study_record(cfg, options))
    if diffs:
        raise StudyMismatch(where, study.study_name, diffs)


__all__ = ["COMPARED", "Difference", "StudyMismatch", "check_record", "default_study_name", "record_differences",
           "study_record"]
