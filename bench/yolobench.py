"""YOLOBench (../shared/data/yolobench): its model names as configs zoo builds, and its stored results.

The data's README says how a name maps to a model: the version picks the layout (`yolo5`: zoo's
yolov5.yaml rows, the YOLOv5 v6.0 backbone and neck; `yolo8`: zoo's yolov8.yaml rows; `yolo3`: the
YOLOv3 rows of ../shared/reference/yolov5/hub/yolov3.yaml), the suffix the scale (`n`, `s`, `m`, `l`,
or `dXwY`), and every model ends in the anchor-free YOLOv8 head (DFL, reg_max 16, 80 classes). Each
config is a plain mapping with `family: ultralytics` (where `Detect` is that head); the YOLOv5-family
blocks the layouts use and Ultralytics lacks (C3) resolve to YOLOv5's by the registry's rule (SPEC §2).

YOLOv3's `Bottleneck` is the one name both families have with different blocks (YOLOv5's: 1x1 then 3x3;
Ultralytics': 3x3 then 3x3 by default), and a row cannot name another family's block, so the yolo3 rows
give Ultralytics' Bottleneck the YOLOv5 kernels explicitly (`k=[1, 3]`): the same convs, attributes and
state-dict shapes (`check_yolo3_bottlenecks` asserts it against the rows built as family yolov5).

`check_rows` asserts every built row's repeats and channels against the README's rule, computed here
on its own from the YAML rows (not by zoo's rules), so a wrong mapping or a wrong rule fails loudly.

Which names map: the accuracy table's 52 models are 4 yolo3, 10 yolo5 and 11 yolo8 names (all 25
mapped) and 5 yolo4, 18 yolo6s/m/l-dXwY and 4 yolo7 names, versions the README gives no layout for
(its "52 variants (yolo3, yolo5, yolo8 layouts)" counts those too); they are listed as not mapped.
The latency table's 36 further names (more yolo3/4/5/6/8 scales) have no trained accuracy.
"""
from __future__ import annotations

import csv
import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, Sequence

import zoo
from zoo.config import config_to_mapping

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"
DATA = SHARED / "data" / "yolobench"
YOLOV3_YAML = SHARED / "reference" / "yolov5" / "hub" / "yolov3.yaml"
ACCURACY_CSV = "COCO_pretrain_300epochs.csv"
LATENCY_CSV = "YOLO_latency.csv"
METRIC = "mAP_0.5:0.95"
NC = 80
REG_MAX = 16

NAMED_SCALES = {"n": (0.33, 0.25), "s": (0.33, 0.50), "m": (0.67, 0.75), "l": (1.0, 1.0)}
DEPTHS = {"1": 1.0, "33": 0.33, "67": 0.67}
WIDTHS = {"25": 0.25, "5": 0.5, "75": 0.75, "1": 1.0}
LAYOUTS = ("yolo3", "yolo5", "yolo8")
# the rows the published heads read (P3/8, P4/16, P5/32; YOLOv3's own Detect row lists 27, 22, 15)
HEAD_INPUTS = {"yolo3": (27, 22, 15), "yolo5": (17, 20, 23), "yolo8": (15, 18, 21)}
NAME = re.compile(r"^(yolo\d)(n|s|m|l|d(1|33|67)w(25|5|75|1))$")


@dataclass(frozen=True)
class Variant:
    """One YOLOBench model name, parsed by the README's rule."""

    name: str
    version: str  # yolo3 | yolo5 | yolo8
    scale: str  # n | s | m | l | dXwY
    depth: float
    width: float
    max_channels: int


@dataclass(frozen=True)
class Record:
    """One (model, resolution) point: trained accuracy and each device's latency in seconds."""

    model: str
    imgsz: int
    map50_95: float
    latency_s: Mapping[str, float]


def parse_name(name: str) -> Variant:
    """`yolo8d67w25` -> Variant(yolo8, depth 0.67, width 0.25, max_channels 768); ValueError otherwise."""
    m = NAME.match(name)
    if not m or m.group(1) not in LAYOUTS:
        raise ValueError(f"{name!r} is not a yolo3/yolo5/yolo8 name with n|s|m|l|dXwY "
                         f"(the data's README gives no layout for others)")
    version, scale = m.group(1), m.group(2)
    depth, width = NAMED_SCALES[scale] if scale in NAMED_SCALES else (DEPTHS[m.group(3)], WIDTHS[m.group(4)])
    return Variant(name, version, scale, depth, width, max_channels(version, depth))


def max_channels(version: str, depth: float) -> int:
    """README: 1024 for yolo3/yolo5; yolo8 caps by depth (n, s, d33: 1024; m, d67: 768; l, d1: 512)."""
    if version != "yolo8":
        return 1024
    return {0.33: 1024, 0.67: 768, 1.0: 512}[depth]


def layout_rows(version: str) -> tuple[list[list[Any]], list[list[Any]]]:
    """(backbone, head without its last row) of the version's published layout, as YAML rows."""
    if version == "yolo3":
        data = config_to_mapping(zoo.load_config(YOLOV3_YAML))
        return [_v5_bottleneck(r) for r in data["backbone"]], [_v5_bottleneck(r) for r in data["head"][:-1]]
    data = config_to_mapping(zoo.load_config({"yolo5": "yolov5n", "yolo8": "yolov8n"}[version]))
    return data["backbone"], data["head"][:-1]


def _v5_bottleneck(row: list[Any]) -> list[Any]:
    """YOLOv5's Bottleneck(c2, shortcut=True) written as Ultralytics' (c2, shortcut, g=1, k=(1, 3), e=0.5)."""
    f, n, module, args = row
    if module != "Bottleneck":
        return row
    shortcut = args[1] if len(args) > 1 else True
    return [f, n, module, [args[0], shortcut, 1, [1, 3], 0.5]]


def config_mapping(variant: Variant) -> dict[str, Any]:
    """The mapping zoo builds for a YOLOBench model: the layout's rows, its scale, the YOLOv8 head."""
    backbone, head = layout_rows(variant.version)
    return {
        "nc": NC, "family": "ultralytics",
        "scales": {variant.scale: [variant.depth, variant.width, variant.max_channels]},
        "backbone": backbone,
        "head": [*head, [list(HEAD_INPUTS[variant.version]), 1, "Detect", ["nc"]]],
    }


def build(variant: Variant) -> zoo.ZooModel:
    return zoo.build_model(config_mapping(variant), scale=variant.scale)


# --- the README's rule, computed on its own ------------------------------------------------------------

INSIDE = frozenset({"C3", "C2f"})  # modules that take n as an argument (the rest are chained n times)
CHANNEL_ROWS = frozenset({"Conv", "C3", "C2f", "SPPF", "Bottleneck"})
PASS_ROWS = frozenset({"nn.Upsample"})


@dataclass(frozen=True)
class ExpectedRow:
    index: int
    module: str
    repeats: int
    out_channels: int | None


def expected_rows(variant: Variant) -> tuple[ExpectedRow, ...]:
    """Repeats `max(round(n*d), 1)` (n > 1), channels `make_divisible(min(c, max_ch) * w, 8)`, by hand."""
    backbone, head = layout_rows(variant.version)
    rows = [*backbone, *head]
    out: list[ExpectedRow] = []
    for i, (f, n, module, args) in enumerate(rows):
        reps = max(int(round(n * variant.depth)), 1) if n > 1 else n
        if module in CHANNEL_ROWS:
            c = min(int(args[0]), variant.max_channels) * variant.width
            ch: int | None = int(math.ceil(c / 8) * 8)
        elif module == "Concat":
            ch = sum(out[s if s >= 0 else i + s].out_channels or 0 for s in f)
        elif module in PASS_ROWS:
            ch = out[i + f if f < 0 else f].out_channels
        else:
            raise AssertionError(f"{variant.name}: row {i} ({module}) has no rule in the README")
        out.append(ExpectedRow(i, module, reps, ch))
    out.append(ExpectedRow(len(rows), "Detect", 1, None))
    return tuple(out)


def check_rows(variant: Variant, model: zoo.ZooModel) -> int:
    """Assert each built row against `expected_rows` (repeats, channels, blocks inside) and the head.

    Returns the number of rows checked; raises AssertionError naming the model and row otherwise.
    """
    want = expected_rows(variant)
    assert len(model.layers) == len(want), f"{variant.name}: {len(model.layers)} rows, README gives {len(want)}"
    for exp, info, module in zip(want, model.layers, model.model):
        where = f"{variant.name} row {exp.index} ({exp.module})"
        assert info.module == exp.module, f"{where}: built {info.module}"
        assert info.repeats == exp.repeats, f"{where}: repeats {info.repeats}, README rule gives {exp.repeats}"
        assert info.out_channels == exp.out_channels, \
            f"{where}: {info.out_channels} channels, README rule gives {exp.out_channels}"
        blocks = len(module.m) if exp.module in INSIDE else (len(module) if exp.repeats > 1 else 1)
        assert blocks == exp.repeats, f"{where}: {blocks} blocks built, README rule gives {exp.repeats}"
    _check_head(variant, model)
    return len(want)


def _check_head(variant: Variant, model: zoo.ZooModel) -> None:
    """The YOLOv8 head: DFL with reg_max 16, 80 classes, box/class branches of Ultralytics' widths."""
    head = model.model[-1]
    ch = [model.layers[i].out_channels for i in HEAD_INPUTS[variant.version]]
    where = f"{variant.name} head"
    assert type(head).__module__.endswith("modules.ultralytics") and type(head).__name__ == "Detect", where
    assert (head.nc, head.reg_max, head.legacy) == (NC, REG_MAX, True), f"{where}: nc/reg_max/class branch"
    assert [s for s in head.strides] == [8.0, 16.0, 32.0], f"{where}: strides {head.strides}"
    c2, c3 = max(16, ch[0] // 4, 4 * REG_MAX), max(ch[0], min(NC, 100))
    for level, c in enumerate(ch):
        box, cls = head.cv2[level], head.cv3[level]
        assert (box[0].conv.in_channels, box[0].conv.out_channels, box[2].out_channels) == (c, c2, 4 * REG_MAX), where
        assert (cls[0].conv.in_channels, cls[0].conv.out_channels, cls[2].out_channels) == (c, c3, NC), where
    assert head.dfl.conv.in_channels == REG_MAX, f"{where}: DFL bins"


def check_yolo3_bottlenecks(variant: Variant, model: zoo.ZooModel) -> None:
    """yolo3's rewritten Bottlenecks equal YOLOv5's: the rows built as family yolov5 give the same shapes."""
    data = config_to_mapping(zoo.load_config(YOLOV3_YAML))
    v5 = {"nc": NC, "family": "yolov5", "depth_multiple": variant.depth, "width_multiple": variant.width,
          "backbone": data["backbone"], "head": data["head"][:-1]}
    ref = zoo.build_model(v5, device="meta")
    want = {k: tuple(v.shape) for k, v in ref.state_dict().items()}
    n_rows = len(ref.layers)
    got = {k: tuple(v.shape) for k, v in model.state_dict().items()
           if int(k.split(".")[1]) < n_rows}
    assert got == want, f"{variant.name}: the yolo3 rows differ from YOLOv5's Bottleneck layout"


# --- the stored results --------------------------------------------------------------------------------

def split_point(name: str) -> tuple[str, int]:
    model, _, size = name.rpartition("_")
    return model, int(size)


def load_records(data_dir: Path = DATA) -> tuple[tuple[Record, ...], tuple[str, ...]]:
    """Records of every (model, resolution) with both accuracy and latency; and the device columns."""
    acc_path, lat_path = data_dir / ACCURACY_CSV, data_dir / LATENCY_CSV
    for p in (acc_path, lat_path):
        if not p.is_file():
            raise FileNotFoundError(f"{p} not found: the benchmark reads ../shared/data/yolobench beside the checkout")
    with lat_path.open(newline="") as fh:
        lat_rows = list(csv.DictReader(fh))
    devices = tuple(c for c in (lat_rows[0].keys() if lat_rows else ()) if c.endswith("_latency"))
    latency = {r["model_name"]: {d: float(r[d]) for d in devices if _number(r.get(d))} for r in lat_rows}
    records = []
    with acc_path.open(newline="") as fh:
        for r in csv.DictReader(fh):
            if r["model_name"] not in latency:
                continue
            model, size = split_point(r["model_name"])
            records.append(Record(model, size, float(r[METRIC]), latency[r["model_name"]]))
    return tuple(records), devices


def _number(text: str | None) -> bool:
    try:
        return text is not None and math.isfinite(float(text))
    except ValueError:
        return False


def variants(names: Sequence[str]) -> tuple[tuple[Variant, ...], tuple[str, ...]]:
    """(the names the README maps, sorted; the names it does not)."""
    mapped, unmapped = [], []
    for name in sorted(set(names)):
        try:
            mapped.append(parse_name(name))
        except ValueError:
            unmapped.append(name)
    return tuple(mapped), tuple(unmapped)
