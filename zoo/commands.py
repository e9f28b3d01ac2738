"""Subcommands about configs and modules: `zoo configs`, `zoo modules`, `zoo validate`."""
from __future__ import annotations

import argparse

from .command import Command


def _configs_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--format", choices=("table", "json"), default="table")


def _configs_run(args: argparse.Namespace) -> int:
    from profiles import report
    from .config import builtin_names

    report.print_builtins(builtin_names(), fmt=args.format)
    return 0


def _modules_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--family", help="only this family (yolov5, ultralytics, damo, shared)")
    p.add_argument("--format", choices=("table", "json"), default="table")


def _modules_run(args: argparse.Namespace) -> int:
    from profiles import report
    from .registry import REGISTRY

    specs = [s for s in REGISTRY.specs() if args.family in (None, s.family)]
    report.print_modules(specs, fmt=args.format)
    return 0


def _validate_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("configs", nargs="+", metavar="CFG", help="YAML file or built-in name")
    p.add_argument("--scale", help="scale of a `scales` config (n, s, m, l, x)")
    p.add_argument("--nc", type=int, help="override the number of classes")


def _validate_run(args: argparse.Namespace) -> int:
    from .builder import build_model
    from .lint import lint_model

    models = [build_model(cfg, scale=args.scale, nc=args.nc, device="meta") for cfg in args.configs]
    from profiles import report

    for model in models:
        report.print_validated(model, lint_model(model))
    return 0


COMMANDS = [
    Command("configs", "List the built-in configs (usable by name).", _configs_args, _configs_run,
            "examples:\n  zoo configs\n  zoo configs --format json"),
    Command("modules", "List registered modules with their family and channel rule.", _modules_args,
            _modules_run, "examples:\n  zoo modules\n  zoo modules --family yolov5"),
    Command("validate", "Check configs (parse, resolve, shapes) without allocating weights.",
            _validate_args, _validate_run,
            "examples:\n  zoo validate my_model.yaml\n  zoo validate yolov5s --nc 3"),
]
