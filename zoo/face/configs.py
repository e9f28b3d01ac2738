"""`zoo configs`, `zoo modules`, `zoo validate`: what configs and modules there are, and whether a config builds."""
from __future__ import annotations

import argparse

CONFIGS_EXAMPLES = "examples:\n  zoo configs\n  zoo configs --format json"
MODULES_EXAMPLES = "examples:\n  zoo modules\n  zoo modules --family yolov5"
VALIDATE_EXAMPLES = "examples:\n  zoo validate my_model.yaml\n  zoo validate yolov5s --nc 3"


def configs_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--format", choices=("table", "json"), default="table")


def configs_run(args: argparse.Namespace) -> int:
    from zoo import builtin_names

    from .render_listings import print_builtins

    print_builtins(builtin_names(), fmt=args.format)
    return 0


def modules_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--family", help="only this family (yolov5, ultralytics, damo, shared)")
    p.add_argument("--format", choices=("table", "json"), default="table")


def modules_run(args: argparse.Namespace) -> int:
    from zoo import REGISTRY

    from .render_listings import print_modules

    print_modules([s for s in REGISTRY.specs() if args.family in (None, s.family)], fmt=args.format)
    return 0


def validate_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("configs", nargs="+", metavar="CFG", help="YAML file or built-in name")
    p.add_argument("--scale", help="scale of a `scales` config (n, s, m, l, x)")
    p.add_argument("--nc", type=int, help="override the number of classes")


def validate_run(args: argparse.Namespace) -> int:
    from zoo import build_model
    from zoo.lint import lint_model

    from .render_listings import print_validated

    models = [build_model(cfg, scale=args.scale, nc=args.nc, device="meta") for cfg in args.configs]
    for model in models:
        print_validated(model, lint_model(model))
    return 0
