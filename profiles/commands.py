"""`zoo profile`: parse options, call profile_model per config, render through profiles.report."""
from __future__ import annotations

import argparse

import torch

from zoo.command import Command
from zoo.errors import ConfigError

DTYPES = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}

EPILOG = """\
examples:
  zoo profile yolov5s                              per-row table, latency at 1 thread, 640 px
  zoo profile yolov5n --no-latency --format json   params, GMACs/GFLOPs, uncounted ops as JSON
  zoo profile yolov5s --deploy                     the fused inference graph (Conv+BN folded)
  zoo profile yolov5n yolov5s my.yaml              side by side, deltas against the first
  zoo profile my.yaml --scale m --nc 3 --imgsz 320 --format md --out my.md
  zoo profile yolov5s --device cuda --batch 8 --runs 50

GFLOPs = 2 x fvcore's MACs (eval mode, real input size, BN included); thop and
torch.utils.flop_counter are shown as cross-checks with per-op differences explained.
"""


def _positive(text: str) -> int:
    try:
        v = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None
    if v < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {v}")
    return v


def _profile_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("configs", nargs="+", metavar="CFG", help="YAML file or built-in name (`zoo configs`)")
    p.add_argument("--imgsz", type=_positive, default=640, help="square input size, a multiple of the max stride")
    p.add_argument("--batch", type=_positive, default=1)
    p.add_argument("--device", default="cpu", help="cpu, cuda, cuda:1 ...")
    p.add_argument("--dtype", choices=tuple(DTYPES), default="float32", help="for latency and memory")
    p.add_argument("--threads", type=_positive, default=1, help="intra-op threads while timing (default 1)")
    p.add_argument("--runs", type=_positive, default=30, help="timed runs after warm-up (default 30)")
    p.add_argument("--deploy", action="store_true", help="profile the inference graph (zoo.deploy)")
    p.add_argument("--no-latency", dest="latency", action="store_false", help="count only, do not time")
    p.add_argument("--crosscheck", "--cross-check", dest="crosscheck", action="store_true",
                   help="also count with thop and torch.utils.flop_counter, per op family (a second and "
                        "third pass)")
    p.add_argument("--no-cross-check", dest="crosscheck", action="store_false",
                   help=argparse.SUPPRESS)  # the default since the cross-check became opt-in
    p.add_argument("--scale", help="scale of a `scales` config (n, s, m, l, x)")
    p.add_argument("--nc", type=_positive, help="override the number of classes")
    p.add_argument("--format", choices=("table", "json", "csv", "md"), default="table")
    p.add_argument("-o", "--out", metavar="FILE", help="write the chosen format to FILE instead of stdout")


def _profile_run(args: argparse.Namespace) -> int:
    from . import report
    from .profile import profile_model

    profiles = []
    for cfg in args.configs:
        with report.stage_progress(f"profiling {cfg}") as stage:
            profiles.append(profile_model(
                cfg, imgsz=args.imgsz, batch=args.batch, device=args.device, dtype=DTYPES[args.dtype],
                deploy=args.deploy, latency=args.latency, threads=args.threads, scale=args.scale, nc=args.nc,
                runs=args.runs, crosscheck=args.crosscheck, on_stage=stage))
    try:
        report.render(profiles, args.format, args.out)
    except OSError as e:
        raise ConfigError(args.out, f"cannot write: {e.strerror or e}") from None
    if args.out:
        report.wrote(args.out)
    return 0


COMMANDS = [
    Command("profile", "Params, MACs/GFLOPs, latency and memory per YAML row and in total.", _profile_args,
            _profile_run, EPILOG),
]
