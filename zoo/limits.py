"""Every bound on untrusted numbers and sizes, in one place, each with the reason for its value.

Configs, `--row` texts, search-space files and command-line options are untrusted: a number in them may
drive a loop, an allocation or arithmetic that overflows. The loaders check against these constants where
the number enters (zoo.yamlio, zoo.config, zoo.args, the option checks); module constructors that take a
count check it with `check_count`. All bounds are far above every built-in and published config.
"""
from __future__ import annotations

import math
import os
import re
from typing import Any

from .errors import ConfigError, OptionError, shown

# -- YAML documents (zoo.yamlio) ----------------------------------------------------------------------
MAX_YAML_BYTES = 1 << 20  # a config or search space is a few KB; a MiB is already a generated file
MAX_YAML_NODES = 100_000  # nodes with every alias expanded; the largest config has ~2,000, a "billion
#                           laughs" document of 500 bytes has 10**9
MAX_YAML_DEPTH = 32  # nesting of collections; configs nest 5 deep (mapping, section, row, args, list)

# -- config keys (zoo.config) -------------------------------------------------------------------------
MAX_NC = 100_000  # classes: ImageNet-21k has 21,841; nc sizes every head's output channels
MAX_INPUT_CHANNELS = 1024  # `ch`: hyperspectral images have a few hundred bands; the probe image is ch x 256 x 256
MAX_MULTIPLE = 16.0  # depth/width multiples (YOLOv5x uses 1.33/1.25); beyond this a typo
MAX_REPEATS = 1000  # a row repeated more often (after the depth multiple) takes minutes to build
MAX_TOTAL_REPEATS = 400  # blocks of a model (repeats summed over its rows): the largest published config has
#                          about 80, and each block is built twice (probe, model) even on the meta device
MAX_ANCHORS = 64  # anchors per level (YOLOv5 uses 3); each one is a set of output channels per level
MAX_LEVELS = 16  # detection levels (P3..P7 is 5)
MAX_REG_MAX = 256  # `reg_max`, DFL bins per box side (published: 16, YOLO26 1); 4 x reg_max output channels
MAX_KEYPOINTS = 1000  # `kpt_shape`'s keypoint count (COCO: 17, whole-body: 133); each is 2-3 output channels

# -- row arguments (zoo.args) -------------------------------------------------------------------------
MAX_ARG = 1 << 20  # |number| in a row's args: channels, kernels, strides, counts, anchor sizes; the widest
#                    published layer has 2,048 channels; bigger values only overflow or allocate unboundedly

# -- counts inside modules (check_count in constructors) -----------------------------------------------
MAX_EXPERTS = 64  # CondConv/DynamicConv experts (published: 4 to 32); each is a full kernel
MAX_DECODER_LAYERS = 64  # RT-DETR decoder layers (published: 3 to 6)
MAX_QUERIES = 10_000  # RT-DETR queries (published: 300; DINO 900)
MAX_HEADS = 1024  # attention heads (published: 8); also bounded by the width they divide
MAX_POINTS = 64  # deformable-attention sampling points per head and level (published: 4)

# -- run options (profiles, search) --------------------------------------------------------------------
MAX_IMGSZ = 8192  # input side in pixels: 4x the largest published training size; the input alone is
#                   3 x 8192**2 floats, every feature map grows with its square
MAX_BATCH = 1024  # images per forward pass when profiling
MAX_THREADS = 1024  # intra-op threads
MAX_RUNS = 100_000  # timed runs

# -- latency-table exports (profiles.lutmanifest; profiles/lutrunner/run_lut.py keeps the same numbers) -----
MAX_LUT_MANIFEST_BYTES = 64 << 20  # an export's manifest: 2,000 candidates of yolov5s make ~5 MB (keys are long)
MAX_LUT_MEASUREMENTS_BYTES = 512 << 20  # the runner's JSONL: raw samples too, ~1 KB an item
MAX_ANCHOR_MODELS = 100  # sampled candidates an anchor times whole per config (`zoo lut anchor --samples`): each
# is built and kept for the rounds, so a large count holds as many models in memory; a handful measures the level
MAX_ANCHOR_ROUNDS = 100  # an anchor's interleaved rounds (`zoo lut anchor --rounds`): each times every model once
MAX_LUT_ITEMS = 1_000_000  # rows and models of one export: a 2,000-candidate space has ~5,000
MAX_INPUT_ELEMENTS = 1 << 28  # elements of one exported input tensor (1 GiB of float32): the runner allocates it

# -- memory (check_allocation) -------------------------------------------------------------------------
MAX_BYTES_ENV = "ZOO_MAX_BYTES"  # the environment variable that overrides DEFAULT_MAX_BYTES
DEFAULT_MAX_BYTES = 8 << 30  # weights plus activations one build or profile may allocate: 8 GiB
_UNITS = {"": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40}
_BYTES = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([KMGT]?)(?:i?B)?\s*$", re.IGNORECASE)


def number_problem(value: Any, *, limit: float = MAX_ARG) -> str | None:
    """Why a YAML/argument number is out of range (not finite, |x| > limit), or None when it is fine.

    Compares before converting, so an int of any size (2**1024 overflows float()) is answered, not raised.
    """
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    if isinstance(value, float) and not math.isfinite(value):
        return f"{value!r} is not a finite number"
    if abs(value) > limit:
        return f"{shown(value)} is out of range (|x| <= {limit:,})"
    return None


def check_count(name: str, value: Any, limit: int, *, low: int = 1) -> int:
    """A count that drives a loop or an allocation: an int in [low, limit], else ValueError naming it.

    Module constructors call this; the builder reports the ValueError as the row's one-line error.
    """
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= limit:
        raise ValueError(f"{name} must be an integer from {low} to {limit:,}, got {shown(value)}")
    return value


def check_option(param: str, value: Any, low: int, high: int, *, source: str | None = None) -> int:
    """An integer run option (imgsz, batch, threads, runs) in [low, high]; OptionError names it as
    `imgsz=` for the API and `--imgsz` for the CLI."""
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise OptionError(source, param, value, f"must be an integer from {low} to {high:,}")
    return value


def max_bytes() -> int:
    """The allocation limit: $ZOO_MAX_BYTES (e.g. 16G, 512M, 1000000) or DEFAULT_MAX_BYTES."""
    text = os.environ.get(MAX_BYTES_ENV)
    if text is None or not text.strip():
        return DEFAULT_MAX_BYTES
    m = _BYTES.match(text)
    if m is None:
        raise ConfigError(MAX_BYTES_ENV, f"must be a byte count such as 8G, 512M or 1000000, got {text!r}")
    return int(float(m.group(1)) * _UNITS[m.group(2).upper()])


def check_allocation(param_count: int, activation_bytes: int, *, source: str | None,
                     bytes_per_param: int = 4) -> None:
    """Refuse a build or profile whose weights plus activations exceed max_bytes(), before allocating."""
    limit = max_bytes()
    weights = param_count * bytes_per_param
    total = weights + activation_bytes
    if total > limit:
        raise ConfigError(source, f"needs about {_size(total)} ({param_count:,} parameters = {_size(weights)}, "
                                  f"activations {_size(activation_bytes)}), over the {_size(limit)} limit "
                                  f"(set {MAX_BYTES_ENV} to raise it)")


def _size(n: int) -> str:
    for unit, factor in (("TiB", 1 << 40), ("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if n >= factor:
            return f"{n / factor:.1f} {unit}"
    return f"{n} B"
