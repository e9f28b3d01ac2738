"""`zoo lut build`, `zoo lut anchor`, `zoo lut show` ...: parse, call profiles.lutbuild / lutanchor / lut, render."""
from __future__ import annotations

import argparse
from typing import Any, Sequence

from .options import (BACKENDS, add_device, add_imgsz, add_provider, add_threads, make_backend, positive_int,
                      provider_settings)

BUILD_EXAMPLES = """\
examples:
  zoo lut build yolov5s --imgsz 320 -o cpu.lut             the config's rows, calibrated on itself
  zoo lut build yolov5s --imgsz 320 --samples 2000 -o cpu.lut
                                                           rows of 2000 random candidates of its space
  zoo lut build yolov5s yolov8s --samples 200 --backend onnxruntime -o ort.lut
  zoo lut build my.yaml --space space.yaml --samples 500 --imgsz 640 --threads 4 -o my.lut

Run the same command again to resume an interrupted build: measured rows are kept and skipped.
Use the table with `zoo profile CFG --latency lut --lut FILE` and `zoo search ... --latency lut|hybrid`.
For a device that cannot run zoo (a Jetson, a phone, TensorRT): `zoo lut export`, then `zoo lut import`.
"""
SHOW_EXAMPLES = "examples:\n  zoo lut show cpu.lut\n  zoo lut show cpu.lut --format json"
ANCHOR_EXAMPLES = """\
examples:
  zoo lut anchor yolov5s --imgsz 320 --lut cpu.lut          5 candidates of its space the table prices whole
  zoo lut anchor yolov5s yolov8s --samples 0 --lut cpu.lut  the configs alone
  zoo lut anchor my.yaml --space space.yaml --samples 8 --rounds 5 --lut cpu.lut

A table holds the device's speed of the minutes it was built in; a busy, throttling or shared machine runs
at another later (a 2-core VM's regimes differ by ~10%), and every prediction carries the gap. An anchor
times a few whole models now and scales every later prediction by measured / predicted (the median). The
models are candidates whose every row the table holds, drawn with a seed the build does not use by default:
the table's own models are predicted partly from their own samples of the build's moment. The latest
anchor stands. It measures, so it runs on the table's own device (the backend, threads and
settings its fingerprint records); `zoo lut show` prints it.
"""


def build_args(p: argparse.ArgumentParser) -> None:
    from search.lutplans import BUILD_SEED, DEFAULT_CALIBRATE

    p.add_argument("configs", nargs="+", metavar="CFG", help="YAML file or built-in name (`zoo configs`)")
    p.add_argument("-o", "--out", required=True, metavar="FILE", help="the table (created, or resumed)")
    add_imgsz(p)
    p.add_argument("--samples", type=int, default=0, metavar="N",
                   help="also the rows of N random candidates of each config's search space")
    p.add_argument("--space", metavar="FILE", help="search space YAML (keys of the search: block)")
    p.add_argument("--seed", type=int, default=BUILD_SEED,
                   help=f"seed of the sampled candidates (default {BUILD_SEED})")
    p.add_argument("--calibrate", type=int, default=None, metavar="K",
                   help=f"sampled candidates per config measured whole for the fit (an in-context table only checks "
                        f"against them), spread through the build (default {DEFAULT_CALIBRATE}; each config is)")
    p.add_argument("--backend", choices=BACKENDS, default="torch", help="runtime timed (default torch, eager)")
    p.add_argument("--exporter", choices=("dynamo", "torchscript"), default=None,
                   help="onnxruntime only: how rows and models reach ONNX (default dynamo; torchscript exports "
                        "about 3x faster, for big tables; profiles and searches with the table follow it)")
    add_provider(p)
    add_threads(p)
    add_device(p)
    p.add_argument("--deploy", action="store_true", help="time the inference graph (zoo.deploy) of each row")
    p.add_argument("--timing", choices=("in_context", "isolated"), default=None,
                   help="in_context (default for torch): rows timed inside whole models' forward passes, so a "
                        "model's rows add up to its total; isolated (onnxruntime's only way): each row alone; "
                        "an existing table keeps its own")
    p.add_argument("--scale", help="scale of a `scales` config")
    p.add_argument("--nc", type=positive_int, help="override the number of classes")
    p.add_argument("--no-progress", action="store_true", help="no progress bar (logs, CI)")


def checked_counts(args: argparse.Namespace) -> int:
    """`--samples` and `--calibrate` of `lut build` and `lut export` checked alike; the calibration count."""
    from search.lutplans import DEFAULT_CALIBRATE
    from zoo.errors import ConfigError

    if args.samples < 0:
        raise ConfigError(args.out, f"--samples must be >= 0, got {args.samples}")
    calibrate = DEFAULT_CALIBRATE if args.calibrate is None else args.calibrate
    if calibrate < 0:
        raise ConfigError(args.out, f"--calibrate must be >= 0, got {calibrate}")
    return calibrate


def build_run(args: argparse.Namespace) -> int:
    from profiles.lutbuild import build_table
    from search.lutplans import lut_sources
    from zoo.errors import ConfigError

    from .console import Progress
    from .render_lut import print_build

    calibrate = checked_counts(args)
    own = {}
    if args.exporter is not None:
        if args.backend != "onnxruntime":
            raise ConfigError(args.out, "--exporter is for --backend onnxruntime")
        own["exporter"] = args.exporter
    own.update(provider_settings(args.provider, args.backend, args.out))
    backend = make_backend(args.backend, source=args.out, threads=args.threads, device=args.device, **own)
    if args.timing == "in_context" and not hasattr(backend, "time_in_context"):
        raise ConfigError(args.out, f"--timing in_context: the {args.backend} backend runs a whole graph as one "
                                    "session and cannot time a row inside it; use --timing isolated")
    with Progress("planning", enabled=not args.no_progress) as progress:
        progress.stage(f"{len(args.configs)} config(s), {args.samples} candidate(s) each at {args.imgsz} px")
        sources = lut_sources(args.configs, imgsz=args.imgsz, samples=args.samples, space_file=args.space,
                              seed=args.seed, calibrate=calibrate, scale=args.scale, nc=args.nc)
    with Progress("lut build", total=1, enabled=not args.no_progress, eta=True) as bar:
        report = build_table(args.out, backend, sources, form="deploy" if args.deploy else "train",
                             timing=args.timing,
                             on_progress=lambda done, total, text: bar.count(done, text, total=max(total, 1)))
    print_build(report)
    return 0


def anchor_args(p: argparse.ArgumentParser) -> None:
    from search.lutplans import ANCHOR_SEED, BUILD_SEED

    p.add_argument("configs", nargs="+", metavar="CFG", help="YAML file or built-in name (`zoo configs`)")
    p.add_argument("--lut", required=True, metavar="FILE", help="the table, built on this device")
    add_imgsz(p)
    p.add_argument("--samples", type=int, default=5, metavar="N",
                   help="time the first N candidates of each config's search space that the table prices whole, "
                        "every row in it (default 5); 0: the configs themselves, whose rows the table must hold too")
    p.add_argument("--space", metavar="FILE", help="search space YAML (keys of the search: block)")
    p.add_argument("--seed", type=int, default=None,
                   help=f"seed of the drawn candidates (default {ANCHOR_SEED}: not the build's default "
                        f"{BUILD_SEED}, whose candidates are the table's own)")
    p.add_argument("--rounds", type=int, default=None, metavar="R",
                   help="interleaved rounds over the models (default 3; each round times every model with the "
                        "table's model protocol)")
    p.add_argument("--scale", help="scale of a `scales` config")
    p.add_argument("--nc", type=positive_int, help="override the number of classes")
    p.add_argument("--no-progress", action="store_true", help="no progress bar (logs, CI)")


def anchor_run(args: argparse.Namespace) -> int:
    from profiles.lutanchor import ANCHOR_ROUNDS, open_to_anchor
    from zoo.errors import ConfigError
    from zoo.limits import MAX_ANCHOR_MODELS

    from .render_lut import print_anchor

    rounds = ANCHOR_ROUNDS if args.rounds is None else args.rounds  # bounded by measure_anchor
    if not 0 <= args.samples <= MAX_ANCHOR_MODELS:
        raise ConfigError(args.lut, f"--samples must be 0 to {MAX_ANCHOR_MODELS}, got {args.samples}")
    table = open_to_anchor(args.lut)
    anchor = anchor_with_bar(table, args.configs, imgsz=args.imgsz, samples=args.samples, space_file=args.space,
                             seed=args.seed, scale=args.scale, nc=args.nc, rounds=rounds, bar=not args.no_progress)
    print_anchor(str(table.path), anchor)
    return 0


def anchor_with_bar(table: Any, configs: Sequence[str], *, imgsz: int, samples: int, rounds: int, bar: bool,
                    space_file: str | None = None, seed: int | None = None, scale: str | None = None,
                    nc: int | None = None) -> Any:
    """Pick the models (search.lutplans.anchor_sources: `samples` candidates per config that the table
    prices whole; 0: the configs), then time them for the table's anchor (profiles.lutanchor.measure_anchor)
    under a progress bar: `zoo lut anchor`'s work, and a search's before it prices from its own table."""
    from profiles.lutanchor import measure_anchor
    from search.lutplans import ANCHOR_SEED, anchor_sources

    from .console import Progress

    with Progress("planning", enabled=bar) as progress:
        progress.stage(f"{samples} candidate(s) of {len(configs)} config(s) at {imgsz} px" if samples > 0
                       else f"{len(configs)} config(s) at {imgsz} px")
        sources = anchor_sources(table, configs, imgsz=imgsz, samples=samples,
                                 seed=ANCHOR_SEED if seed is None else seed, space_file=space_file, scale=scale, nc=nc)
    with Progress("lut anchor", total=1, enabled=bar, eta=True) as progress:
        return measure_anchor(table, sources, rounds=rounds,
                              on_progress=lambda done, total, text: progress.count(done, text, total=max(total, 1)))


def show_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("table", metavar="FILE", help="a table written by `zoo lut build`")
    p.add_argument("--format", choices=("table", "json"), default="table", help="text or JSON on stdout")


def show_run(args: argparse.Namespace) -> int:
    from profiles.lut import LatencyTable, summarize_table

    from .render_lut import print_summary

    print_summary(summarize_table(LatencyTable.load(args.table)), args.format)
    return 0


EXPORT_EXAMPLES = """\
examples:
  zoo lut export yolov5s --imgsz 320 --samples 500 -o v5s-export      rows of 500 candidates, 25 whole models
  zoo lut export my.yaml --space space.yaml --samples 200 --imgsz 640 -o export

Copy the folder to the device, then there (Python, numpy and onnxruntime only: no torch, no zoo):
  python run_lut.py                       CPU provider, 1 thread; --provider cuda|tensorrt, --threads N
  taskset -c 2 python run_lut.py          pinned to one core as well
and back here: zoo lut import export/measurements.jsonl -o device.lut
The folder's lut-manifest.md describes the manifest and the measurements for other runtimes.
"""
IMPORT_EXAMPLES = """\
examples:
  zoo lut import v5s-export/measurements.jsonl -o jetson.lut
  zoo search yolov5s --imgsz 320 --budget-ms 25 --latency lut --lut jetson.lut    priced here, for the device
"""


def export_args(p: argparse.ArgumentParser) -> None:
    from search.lutplans import BUILD_SEED, DEFAULT_CALIBRATE

    p.add_argument("configs", nargs="+", metavar="CFG", help="YAML file or built-in name (`zoo configs`)")
    p.add_argument("-o", "--out", required=True, metavar="DIR", help="the export folder (created; a rerun resumes)")
    add_imgsz(p)
    p.add_argument("--samples", type=int, default=0, metavar="N",
                   help="also the rows of N random candidates of each config's search space")
    p.add_argument("--space", metavar="FILE", help="search space YAML (keys of the search: block)")
    p.add_argument("--seed", type=int, default=BUILD_SEED,
                   help=f"seed of the sampled candidates (default {BUILD_SEED})")
    p.add_argument("--calibrate", type=int, default=None, metavar="K",
                   help=f"sampled candidates per config exported whole for the fit (default {DEFAULT_CALIBRATE}; "
                        "each config is)")
    p.add_argument("--exporter", choices=("dynamo", "torchscript"), default="dynamo",
                   help="how rows and models reach ONNX (default dynamo; torchscript exports about 3x faster)")
    p.add_argument("--deploy", action="store_true", help="export the inference graph (zoo.deploy) of each row")
    p.add_argument("--scale", help="scale of a `scales` config")
    p.add_argument("--nc", type=positive_int, help="override the number of classes")
    p.add_argument("--no-progress", action="store_true", help="no progress bar (logs, CI)")


def export_run(args: argparse.Namespace) -> int:
    from profiles.lutexport import export_folder
    from search.lutplans import lut_sources

    from .console import Progress, note

    calibrate = checked_counts(args)
    with Progress("planning", enabled=not args.no_progress) as progress:
        progress.stage(f"{len(args.configs)} config(s), {args.samples} candidate(s) each at {args.imgsz} px")
        sources = lut_sources(args.configs, imgsz=args.imgsz, samples=args.samples, space_file=args.space,
                              seed=args.seed, calibrate=calibrate, scale=args.scale, nc=args.nc)
    with Progress("lut export", total=1, enabled=not args.no_progress, eta=True) as bar:
        report = export_folder(args.out, sources, form="deploy" if args.deploy else "train", exporter=args.exporter,
                               command=export_command(args),
                               on_progress=lambda done, total, text: bar.count(done, text, total=max(total, 1)))
    note(f"{report.folder}: {report.rows} rows and {report.models} whole models ({report.exported} files written "
         f"now) in {report.seconds:.1f} s; on the device: python run_lut.py [--provider cuda] [--threads N], "
         f"then: zoo lut import {report.folder}/measurements.jsonl -o device.lut")
    return 0


def export_command(args: argparse.Namespace) -> str:
    """The `zoo lut export` command line of these options (kept in the manifest, for the record)."""
    import shlex

    parts = ["zoo", "lut", "export", *args.configs, "--imgsz", str(args.imgsz)]
    for flag, value in (("--samples", args.samples or None), ("--space", args.space), ("--seed", args.seed or None),
                        ("--calibrate", args.calibrate), ("--scale", args.scale), ("--nc", args.nc)):
        if value is not None:
            parts += [flag, str(value)]
    parts += ["--exporter", args.exporter] + (["--deploy"] if args.deploy else []) + ["-o", args.out]
    return shlex.join(parts)


def import_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("measurements", metavar="FILE", help="the runner's measurements.jsonl")
    p.add_argument("-o", "--out", required=True, metavar="FILE", help="the table (created, or added to)")
    p.add_argument("--manifest", metavar="FILE", help="the export's manifest.json (default: beside FILE)")


def import_run(args: argparse.Namespace) -> int:
    from profiles.lutimport import import_measurements

    from .render_lut import print_import

    print_import(import_measurements(args.measurements, args.out, manifest=args.manifest))
    return 0
