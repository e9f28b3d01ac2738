"""The two files between `zoo lut export` and `zoo lut import`, written and read here only: the export's
manifest (what to time: one ONNX file per row signature, whole models for the calibration) and the
runner's measurements (JSON lines). profiles/lutrunner/lut-manifest.md documents both for a runner of
another runtime (TFLite, trtexec); profiles/lutrunner/run_lut.py is the ONNX Runtime runner, which reads
the manifest itself (it runs where zoo does not).

A file that is not what it claims (malformed, truncated, from another export, over the bounds of
zoo.limits) is a LutError naming the file and line; nothing is allocated from a size before it is checked.
"""
from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

from zoo.limits import MAX_INPUT_ELEMENTS, MAX_LUT_ITEMS, MAX_LUT_MANIFEST_BYTES, MAX_LUT_MEASUREMENTS_BYTES, MAX_RUNS

from . import fields
from .latency import TimingProtocol
from .lut import FORMS, LutError

FORMAT = "zoo-lut-export"
VERSION = 1
MEASUREMENTS_FORMAT = "zoo-lut-measurements"
MANIFEST = "manifest.json"
MEASUREMENTS = "measurements.jsonl"
RUNNER = "run_lut.py"
DOC = "lut-manifest.md"
SHIPPED = Path(__file__).resolve().parent / "lutrunner"  # the runner and the format's documentation
KINDS = ("row", "model")


@dataclass(frozen=True)
class InputSpec:
    name: str
    shape: tuple[int, ...]
    dtype: str = "float32"


@dataclass(frozen=True)
class ManifestItem:
    """One ONNX file to time: a row (its table key) or a whole model (the row keys it sums, in row order)."""

    id: str
    kind: str  # "row" or "model"
    file: str  # relative to the export folder
    inputs: tuple[InputSpec, ...]
    key: str | None = None  # row: its RowSignature key
    label: str | None = None  # row: what it is, for a reader
    name: str | None = None  # model: its calibration record's name
    keys: tuple[str, ...] = ()  # model: its rows' keys, repeats counted


@dataclass(frozen=True)
class Manifest:
    export_id: str
    created: str
    form: str
    imgsz: int
    torch_version: str
    exporter: str  # "torch.onnx dynamo" or "torch.onnx torchscript"
    opset: int
    protocol: TimingProtocol  # rows
    model_protocol: TimingProtocol  # calibration models
    process_warmup_s: float
    items: tuple[ManifestItem, ...]
    sources: tuple[str, ...] = ()
    commands: tuple[str, ...] = field(default=())  # the `zoo lut export` command lines that made it

    def as_dict(self) -> dict[str, Any]:
        return {"format": FORMAT, "version": VERSION, "export_id": self.export_id, "created": self.created,
                "form": self.form, "imgsz": self.imgsz, "torch_version": self.torch_version,
                "exporter": self.exporter, "opset": self.opset, "protocol": self.protocol.as_dict(),
                "model_protocol": self.model_protocol.as_dict(), "process_warmup_s": self.process_warmup_s,
                "sources": list(self.sources), "commands": list(self.commands),
                "items": [_item_dict(i) for i in self.items]}


def _item_dict(i: ManifestItem) -> dict[str, Any]:
    d: dict[str, Any] = {"id": i.id, "kind": i.kind, "file": i.file,
                         "inputs": [{"name": s.name, "shape": list(s.shape), "dtype": s.dtype} for s in i.inputs]}
    if i.kind == "row":
        d.update(key=i.key, label=i.label)
    else:
        d.update(name=i.name, keys=list(i.keys))
    return d


def write_manifest(folder: Path, manifest: Manifest) -> Path:
    """manifest.json, one item a line (a reader's error names the item's line)."""
    d = manifest.as_dict()
    items = d.pop("items")
    head = json.dumps(d, indent=1)[:-2]  # without the closing "\n}"
    body = ",\n".join("  " + json.dumps(i) for i in items)
    path = folder / MANIFEST
    path.write_text(f'{head},\n "items": [\n{body}\n ]\n}}\n', encoding="utf-8")
    return path


def read_manifest(path: str | Path) -> Manifest:
    path = Path(path)
    text = _read_bounded(path, MAX_LUT_MANIFEST_BYTES, "manifest")
    try:
        data = json.loads(text)
    except json.JSONDecodeError as e:
        raise LutError(str(path), f"not valid JSON ({e.msg}); a truncated copy? export again", line=e.lineno) from None
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise LutError(str(path), f'not a zoo lut export manifest (no "format": "{FORMAT}")', line=1)
    if data.get("version") != VERSION:
        raise LutError(str(path), f"manifest version {data.get('version')!r}; this zoo reads version {VERSION}", line=1)
    try:
        form = fields.text(data, "form")
        if form not in FORMS:
            raise ValueError(f"form must be one of {', '.join(FORMS)}")
        head = dict(export_id=fields.text(data, "export_id"), created=fields.text(data, "created"), form=form,
                    imgsz=fields.count(data, "imgsz"), torch_version=fields.text(data, "torch_version"), exporter=fields.text(data, "exporter"),
                    opset=fields.count(data, "opset"), protocol=_protocol(data.get("protocol")),
                    model_protocol=_protocol(data.get("model_protocol")),
                    process_warmup_s=fields.number(data, "process_warmup_s", at_least=0),
                    sources=tuple(fields.texts(data, "sources")), commands=tuple(fields.texts(data, "commands")))
    except (ValueError, TypeError) as e:
        raise LutError(str(path), f"bad manifest header: {e}", line=1) from None
    raw_items = data.get("items")
    if not isinstance(raw_items, list):
        raise LutError(str(path), "items must be a list", line=1)
    if len(raw_items) > MAX_LUT_ITEMS:
        raise LutError(str(path), f"{len(raw_items)} items, over the {MAX_LUT_ITEMS} an export may have")
    lines = _item_lines(text)
    items, ids, row_keys = [], set(), set()
    for n, raw in enumerate(raw_items):
        line = lines[n] if n < len(lines) else None
        try:
            item = _item(raw)
            if item.id in ids:
                raise ValueError(f"id {item.id!r} twice")
            if not _inside(path.parent, item.file):
                raise ValueError(f"file {item.file!r} is outside the export folder")
        except (ValueError, TypeError) as e:
            raise LutError(str(path), f"item {n}: {e}", line=line) from None
        ids.add(item.id)
        if item.kind == "row":
            row_keys.add(item.key)
        items.append(item)
    for n, item in enumerate(items):
        lacking = [k for k in item.keys if k not in row_keys]
        if lacking:
            raise LutError(str(path), f"item {n}: model {item.name!r} sums a row the manifest lacks ({lacking[0]})",
                           line=lines[n] if n < len(lines) else None)
    return Manifest(items=tuple(items), **head)


def _item(raw: Any) -> ManifestItem:
    if not isinstance(raw, dict):
        raise ValueError("not a JSON object")
    kind = raw.get("kind")
    if kind not in KINDS:
        raise ValueError(f"kind must be row or model, got {kind!r}")
    inputs = raw.get("inputs")
    if not isinstance(inputs, list) or not inputs:
        raise ValueError("inputs must be a non-empty list")
    specs = []
    for spec in inputs:
        if not isinstance(spec, dict):
            raise ValueError("each input must be an object with name and shape")
        shape = spec.get("shape")
        if not isinstance(shape, list) or not shape or not all(
                isinstance(d, int) and not isinstance(d, bool) and d > 0 for d in shape):
            raise ValueError(f"input {spec.get('name')!r}: shape must be a list of positive integers")
        if math.prod(shape) > MAX_INPUT_ELEMENTS:
            raise ValueError(f"input {spec.get('name')!r}: {math.prod(shape)} elements, over {MAX_INPUT_ELEMENTS}")
        if spec.get("dtype", "float32") != "float32":
            raise ValueError(f"input {spec.get('name')!r}: dtype {spec.get('dtype')!r}, only float32")
        specs.append(InputSpec(fields.text(spec, "name"), tuple(shape)))
    common = dict(id=fields.text(raw, "id"), kind=kind, file=fields.text(raw, "file"), inputs=tuple(specs))
    if kind == "row":
        return ManifestItem(key=fields.text(raw, "key"), label=raw.get("label") if isinstance(raw.get("label"), str) else None,
                            **common)
    keys = fields.texts(raw, "keys")
    if not keys:
        raise ValueError("a model needs the keys of its rows")
    return ManifestItem(name=fields.text(raw, "name"), keys=tuple(keys), **common)


# ---- the runner's measurements ---------------------------------------------------------------------------
@dataclass(frozen=True)
class DeviceRecord:
    """The first line of measurements.jsonl: where and how the items were timed."""

    runner: int
    fingerprint: Mapping[str, Any]  # cpu_model, physical_cores, logical_cores, machine, os, onnxruntime, ...
    protocol: TimingProtocol
    model_protocol: TimingProtocol


@dataclass(frozen=True)
class Timing:
    id: str
    median_ms: float
    p90_ms: float
    mean_ms: float
    cv: float
    runs: int
    warmup_runs: int


@dataclass(frozen=True)
class Measurements:
    device: DeviceRecord
    timings: dict[str, Timing]  # by item id (the first timing of an id stands)
    errors: dict[str, str]  # item id -> why the runner could not time it (and no timing followed)


DEVICE_FIELDS = ("cpu_model", "physical_cores", "logical_cores", "machine", "onnxruntime", "providers", "device",
                 "threads", "graph_optimization_level")


def read_measurements(path: str | Path, manifest: Manifest) -> Measurements:
    """The runner's JSONL for `manifest`: one device record (repeated identically by resumed runs), then
    timing and error records of the manifest's items. A torn last line (an interrupted runner) is ignored."""
    path = Path(path)
    text = _read_bounded(path, MAX_LUT_MEASUREMENTS_BYTES, "measurements file")
    lines = text.split("\n")
    torn = not text.endswith("\n")
    ids = {i.id for i in manifest.items}
    device: DeviceRecord | None = None
    first_device: dict[str, Any] | None = None
    timings: dict[str, Timing] = {}
    errors: dict[str, str] = {}
    for n, raw in enumerate(lines, 1):
        if not raw.strip():
            continue
        try:
            rec = json.loads(raw)
            if not isinstance(rec, dict):
                raise ValueError("not a JSON object")
        except ValueError as e:
            if torn and n == len(lines):
                break
            raise LutError(str(path), f"not valid JSON ({e}); a truncated copy?", line=n) from None
        if rec.get("export_id") != manifest.export_id:
            raise LutError(str(path), f"from another export (export_id {rec.get('export_id')!r}; the manifest's is "
                                      f"{manifest.export_id!r})", line=n)
        try:
            kind = rec.get("kind")
            if kind == "device":
                if first_device is None:
                    device, first_device = _device(rec), rec
                elif rec.get("fingerprint") != first_device.get("fingerprint"):
                    raise ValueError("a second device record that differs from the first (measured on two devices?)")
            elif device is None:
                raise ValueError("a measurement before the device record")
            elif kind == "timing":
                t = Timing(fields.text(rec, "id"), fields.number(rec, "median_ms", positive=True), fields.number(rec, "p90_ms", positive=True), fields.number(rec, "mean_ms", positive=True),
                           fields.number(rec, "cv", at_least=0), fields.count(rec, "runs"), fields.count(rec, "warmup_runs"))
                if t.id not in ids:
                    raise ValueError(f"item {t.id!r} is not in the manifest")
                if t.runs < 1 or t.runs > MAX_RUNS:
                    raise ValueError(f"runs {t.runs}: 1 to {MAX_RUNS}")
                timings.setdefault(t.id, t)
                errors.pop(t.id, None)
            elif kind == "error":
                item = fields.text(rec, "id")
                if item not in ids:
                    raise ValueError(f"item {item!r} is not in the manifest")
                if item not in timings:
                    errors[item] = str(rec.get("error", "unknown error"))
            else:
                raise ValueError(f"unknown kind {kind!r} (device, timing or error)")
        except (ValueError, TypeError) as e:
            raise LutError(str(path), str(e), line=n) from None
    if device is None:
        raise LutError(str(path), "no device record: not the output of a lut runner", line=1)
    return Measurements(device, timings, errors)


def _device(rec: dict[str, Any]) -> DeviceRecord:
    if rec.get("format") != MEASUREMENTS_FORMAT:
        raise ValueError(f'the device record lacks "format": "{MEASUREMENTS_FORMAT}"')
    fp = rec.get("fingerprint")
    if not isinstance(fp, dict):
        raise ValueError("the device record lacks its fingerprint")
    missing = [k for k in DEVICE_FIELDS if k not in fp]
    if missing:
        raise ValueError(f"the device fingerprint lacks {', '.join(missing)}")
    if not isinstance(fp["providers"], list) or not fp["providers"] or not all(isinstance(p, str) for p in fp["providers"]):
        raise ValueError("the device fingerprint's providers must be a list of names")
    if isinstance(fp["threads"], bool) or not isinstance(fp["threads"], int) or fp["threads"] < 1:
        raise ValueError("the device fingerprint's threads must be an integer >= 1")
    return DeviceRecord(fields.count(rec, "runner"), fp, _protocol(rec.get("protocol")), _protocol(rec.get("model_protocol")))


# ---- small checks --------------------------------------------------------------------------------------
def _read_bounded(path: Path, limit: int, what: str) -> str:
    try:
        size = path.stat().st_size
        if size > limit:
            raise LutError(str(path), f"{size} bytes, over the {limit} a {what} may have")
        return path.read_bytes().decode("utf-8")
    except OSError as e:
        raise LutError(str(path), f"cannot read the {what}: {e.strerror or e}") from None
    except UnicodeDecodeError as e:
        raise LutError(str(path), f"not UTF-8 text (byte {e.start})") from None


def _item_lines(text: str) -> list[int]:
    """The line of each item of a manifest written by write_manifest (one item a line)."""
    lines = text.split("\n")
    start = next((n for n, ln in enumerate(lines) if ln.strip().startswith('"items"')), None)
    if start is None:
        return []
    return [n + 1 for n, ln in enumerate(lines) if n > start and ln.strip().startswith("{")]


def _inside(folder: Path, rel: str) -> bool:
    root = os.path.realpath(folder)
    return os.path.realpath(os.path.join(root, rel)).startswith(root + os.sep)


def _protocol(raw: Any) -> TimingProtocol:
    if not isinstance(raw, dict):
        raise ValueError("a protocol must be an object (runs, warmup_runs, warmup_s, max_warmup_s)")
    runs = fields.count(raw, "runs")
    if runs > MAX_RUNS:
        raise ValueError(f"runs {runs}: at most {MAX_RUNS}")
    return TimingProtocol(runs=runs, warmup_runs=fields.count(raw, "warmup_runs"), warmup_s=fields.number(raw, "warmup_s", at_least=0),
                          max_warmup_s=fields.number(raw, "max_warmup_s", at_least=0))


__all__ = ["DOC", "DeviceRecord", "FORMAT", "InputSpec", "MANIFEST", "MEASUREMENTS", "Manifest", "ManifestItem",
           "Measurements", "RUNNER", "SHIPPED", "Timing", "VERSION", "read_manifest", "read_measurements",
           "write_manifest"]
