"""`zoo profile`: profile each config (profiles.profile_model) with its stages on stderr, then render."""
from __future__ import annotations

import argparse

from .options import (BACKENDS, add_batch, add_device, add_dtype, add_imgsz, add_provider, add_threads, dtype_of,
                      make_backend, positive_int, provider_settings, runs)

EXAMPLES = """\
examples:
  zoo profile yolov5s                              per-row table, latency at 1 thread, 640 px
  zoo profile yolov5n --no-latency --format json   params, GMACs/GFLOPs, uncounted ops as JSON
  zoo profile yolov5s --deploy                     the fused inference graph (Conv+BN folded)
  zoo profile yolov5n yolov5s my.yaml              side by side, deltas against the first
  zoo profile my.yaml --scale m --nc 3 --imgsz 320 --format md --out my.md
  zoo profile yolov5s --device cuda --batch 8 --runs 50
  zoo profile yolov5s --wide | less -S             every column, args in full, whatever the terminal
  zoo profile yolov5s --imgsz 320 --backend onnxruntime   ONNX Runtime: the whole graph, each row alone
  zoo profile yolov5s --imgsz 320 --latency lut --lut cpu.lut   predicted from a latency table

The table fits the terminal: a compact layout under 100 columns, every column from 100 on.

GFLOPs = 2 x fvcore's MACs (eval mode, real input size, BN included); thop and
torch.utils.flop_counter are cross-checks (--crosscheck) with per-op differences explained.
"""


def profile_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("configs", nargs="+", metavar="CFG", help="YAML file or built-in name (`zoo configs`)")
    add_imgsz(p)
    add_batch(p)
    add_device(p)
    add_dtype(p)
    add_threads(p)
    p.add_argument("--runs", type=runs, default=30, metavar="N", help="timed runs after warm-up")
    p.add_argument("--deploy", action="store_true", help="profile the inference graph (zoo.deploy)")
    p.add_argument("--no-latency", dest="latency", action="store_false", help="count only, do not time")
    p.add_argument("--backend", choices=BACKENDS, default=None,
                   help="runtime timed: torch (eager, the default) or onnxruntime (whole graph, rows alone); "
                        "with --latency lut, the table's backend unless given")
    add_provider(p)
    p.add_argument("--latency", dest="latency_mode", choices=("measure", "lut"), default=None,
                   help="measure (default) or lut: predict from --lut FILE (`zoo lut build`)")
    p.add_argument("--lut", metavar="FILE", help="latency table to predict from (implies --latency lut)")
    p.add_argument("--crosscheck", "--cross-check", dest="crosscheck", action="store_true",
                   help="also count with thop and torch.utils.flop_counter, per op family (a second and "
                        "third pass)")
    p.add_argument("--no-cross-check", dest="crosscheck", action="store_false",
                   help=argparse.SUPPRESS)  # the default since the cross-check became opt-in
    p.add_argument("--scale", help="scale of a `scales` config (n, s, m, l, x)")
    p.add_argument("--nc", type=positive_int, help="override the number of classes")
    p.add_argument("--format", choices=("table", "json", "csv", "md"), default="table",
                   help="table (fits the terminal; --wide shows every column), json (a list, one object per "
                        "config), csv (one line per row) or md (markdown)")
    p.add_argument("--wide", action="store_true",
                   help="table: every column, args in full, however wide (default: fit the terminal)")
    p.add_argument("-o", "--out", metavar="FILE", help="write the chosen format to FILE instead of stdout")


def profile_run(args: argparse.Namespace) -> int:
    from profiles import profile_model
    from profiles.latency import half_on_cpu
    from zoo.errors import ConfigError

    from .console import Progress, note, warning
    from .render_profile import render

    if args.latency:  # before the wait, not after: a half dtype on CPU is slow to time
        half = half_on_cpu(args.device, dtype_of(args.dtype))
        if half is not None:
            warning(f"--dtype {args.dtype}: {half.text}")
    source = args.configs[0]
    own = provider_settings(args.provider, args.backend or "torch", source)
    table = open_table(args, source) if args.latency else None
    backend: object = args.backend or "torch"
    if args.latency and table is None and backend != "torch":
        backend = make_backend(str(backend), source=source, threads=args.threads, device=args.device,
                               **own,
                               dtype=dtype_of(args.dtype))
    profiles = []
    for cfg in args.configs:
        with Progress(f"profiling {cfg}") as progress:
            profiles.append(profile_model(
                cfg, imgsz=args.imgsz, batch=args.batch, device=args.device, dtype=dtype_of(args.dtype),
                deploy=args.deploy, latency=args.latency, threads=args.threads, scale=args.scale, nc=args.nc,
                runs=args.runs, crosscheck=args.crosscheck, backend=backend, lut=table, on_stage=progress.stage))
    try:
        render(profiles, args.format, args.out, wide=args.wide)
    except OSError as e:
        raise ConfigError(args.out, f"cannot write: {e.strerror or e}") from None
    if args.out:
        note(f"wrote {args.out}")
    return 0


def open_table(args: argparse.Namespace, source: str) -> object:
    """The latency table of `--latency lut --lut FILE`: any device's table prices here (read only); on its
    own device (the table's backend, or --backend, with --threads and --device) missing rows are measured
    and appended. None for --latency measure."""
    from profiles.backends import backend_of
    from profiles.lut import LatencyTable
    from zoo.errors import ConfigError

    mode = args.latency_mode or ("lut" if args.lut else "measure")
    if mode == "measure":
        if args.lut:
            raise ConfigError(args.lut, "--lut is for --latency lut")
        return None
    if not args.lut:
        raise ConfigError(source, "--latency lut needs --lut FILE (a table from `zoo lut build` or `zoo lut import`)")
    try:
        here = backend_of(LatencyTable.load(args.lut).fingerprint, backend=args.backend, threads=args.threads,
                          device=args.device)
    except (ValueError, ConfigError):
        here = None  # this machine cannot run the table's backend: it still prices from it
    return LatencyTable.open_to_price(args.lut, here)
