"""`zoo configs`, `zoo modules`, `zoo validate`: what configs and modules there are, and whether a config builds."""
from __future__ import annotations

import argparse

from .options import add_imgsz

CONFIGS_EXAMPLES = "examples:\n  zoo configs\n  zoo configs --format json"
MODULES_EXAMPLES = "examples:\n  zoo modules\n  zoo modules --family yolov5"
VALIDATE_EXAMPLES = ("examples:\n  zoo validate my_model.yaml\n  zoo validate yolov5s --nc 3\n"
                     "  zoo validate a.yaml b.yaml --imgsz 320      every file, at the size you will profile")


def configs_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--format", choices=("table", "json"), default="table", help="a table or JSON on stdout")


def configs_run(args: argparse.Namespace) -> int:
    from zoo import builtin_names

    from .render_listings import print_builtins

    print_builtins(builtin_names(), fmt=args.format)
    return 0


def modules_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--family", help="only this family (yolov5, ultralytics, damo, or shared: every family's)")
    p.add_argument("--format", choices=("table", "json"), default="table", help="a table or JSON on stdout")


def modules_run(args: argparse.Namespace) -> int:
    from zoo import REGISTRY
    from zoo.errors import OptionError
    from zoo.registry import SHARED

    from .render_listings import print_modules

    families = sorted(f.name for f in REGISTRY.families()) + [SHARED]
    if args.family is not None and args.family not in families:
        raise OptionError(None, "family", args.family, f"is not a family: {', '.join(families)}")
    print_modules([s for s in REGISTRY.specs() if args.family in (None, s.family)], fmt=args.format)
    return 0


def validate_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("configs", nargs="+", metavar="CFG", help="YAML file or built-in name (every one is checked)")
    add_imgsz(p)
    p.add_argument("--scale", help="scale of a `scales` config (n, s, m, l, x)")
    p.add_argument("--nc", type=int, help="override the number of classes")


def validate_run(args: argparse.Namespace) -> int:
    """Each config on its own: an ok line (stdout) and its warnings, or its one error line; exit 1 if any failed."""
    from profiles import build_checked
    from zoo.errors import ConfigError
    from zoo.lint import lint_model
    from zoo.warning_capture import capture_warnings

    from .console import error
    from .render_listings import print_validated

    failed = 0
    for cfg in args.configs:
        try:
            with capture_warnings() as caught:  # this file's warnings only (a failing file's are dropped)
                model = build_checked(cfg, imgsz=args.imgsz, scale=args.scale, nc=args.nc, device="meta")
                lint = lint_model(model)
        except ConfigError as e:
            error(e.cli_message)
            failed += 1
            continue
        print_validated(model, args.imgsz, lint, caught.lines)
    return 1 if failed else 0
