"""`zoo lut export`: what a latency table needs, for a device that runs neither torch nor zoo.

Every distinct row signature of some plans becomes one ONNX file (the row alone at its real input shapes,
exported as the onnxruntime backend exports a row it times), the calibration plans become whole-model
ONNX files, and a manifest (profiles.lutmanifest) lists them in the order a build would measure them
(profiles.lutbuild.interleave: the models spread through the rows). The runner (profiles/lutrunner/
run_lut.py, Python + numpy + onnxruntime) and the format's documentation are copied beside them; the
device's JSONL comes back through `zoo lut import` (profiles.lutimport).

Files are named by a digest of their row key or model name, written whole (a temporary name, then
renamed), and kept on a rerun: an interrupted export resumes, and its manifest is written last.
"""
from __future__ import annotations

import datetime as _dt
import hashlib
import os
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

import torch

from .backends.base import BackendError, random_inputs
from .backends.onnxrt import DEFAULT_OPSET, EXPORTERS, export_onnx, export_rows
from .lut import LutError, RowMaker, RowRef, plan_refs
from .lutbuild import BUILD_WARMUP_S, MODEL_PROTOCOL, ROW_PROTOCOL, BuildSource, _whole, interleave
from .lutmanifest import DOC, MANIFEST, RUNNER, SHIPPED, InputSpec, Manifest, ManifestItem, write_manifest

CHUNK = 16  # rows exported together (the onnxruntime backend's reason: a fixed cost per export)
Progress = Callable[[int, int, str], None]


@dataclass(frozen=True)
class ExportReport:
    folder: str
    manifest: Manifest
    rows: int
    models: int
    exported: int  # files written by this run (the rest were there)
    seconds: float


def row_id(key: str) -> str:
    return "r" + hashlib.sha1(key.encode()).hexdigest()[:16]


def model_id(name: str) -> str:
    return "m" + hashlib.sha1(name.encode()).hexdigest()[:16]


def export_folder(folder: str | Path, sources: Sequence[BuildSource], *, form: str = "train",
                  exporter: str = "dynamo", opset: int = DEFAULT_OPSET, command: str | None = None,
                  on_progress: Progress | None = None) -> ExportReport:
    """Write the ONNX files, the manifest, the runner and its documentation into `folder`."""
    started = time.perf_counter()
    if exporter not in EXPORTERS:
        raise ValueError(f"exporter={exporter!r}: one of {', '.join(EXPORTERS)}")
    folder = Path(folder)
    try:
        (folder / "rows").mkdir(parents=True, exist_ok=True)
        (folder / "models").mkdir(exist_ok=True)
    except OSError as e:
        raise LutError(str(folder), f"cannot create the export folder: {e.strerror or e}") from None
    maker = RowMaker(form)
    refs: list[RowRef] = []
    for s in sources:
        refs += maker.add(s.plan)
    imgsz = {s.plan.imgsz for s in sources}
    calibrating = list({s.model_name: s for s in sources if s.calibrate}.items())
    order = interleave(list({r.key: r for r in refs}.values()), calibrating)
    total = len({r.key for r in refs}) + len(calibrating)
    items: list[ManifestItem] = []
    seen: set[str] = set()
    exported = 0

    def tick(text: str) -> None:
        if on_progress is not None:
            on_progress(len(items), total, text)

    for rows, model in order:
        todo = [r for r in dict.fromkeys(r.key for r in rows) if r not in seen]
        seen.update(todo)
        refs_by_key = {r.key: r for r in rows}
        for start in range(0, len(todo), CHUNK):
            chunk = todo[start:start + CHUNK]
            made, n = _export_rows(folder, chunk, maker, exporter, opset)
            exported += n
            for key, (file, inputs) in zip(chunk, made):
                items.append(ManifestItem(row_id(key), "row", file, inputs, key=key, label=refs_by_key[key].label))
                tick(f"row {refs_by_key[key].label or key}")
        if model is not None:
            name, s = model
            shape = (1, s.plan.config.ch, s.plan.imgsz, s.plan.imgsz)
            file = f"models/{model_id(name)}.onnx"
            if not (folder / file).exists():
                try:
                    _write(folder / file, export_onnx(_whole(s, form), random_inputs(shape), opset=opset,
                                                      exporter=exporter))
                except BackendError as e:
                    raise LutError(str(folder), f"calibration model {name!r}: {e.text}") from None
                exported += 1
            items.append(ManifestItem(model_id(name), "model", file, _inputs(folder / file, [shape]),
                                      name=name, keys=tuple(r.key for r in plan_refs(s.plan))))
            tick(f"model {s.name}")
    digest = hashlib.sha1("\n".join([form, exporter, str(opset), torch.__version__, ROW_PROTOCOL.__repr__(),
                                     MODEL_PROTOCOL.__repr__(), *(i.id for i in items)]).encode()).hexdigest()[:16]
    manifest = Manifest(export_id=digest, created=_dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
                        form=form, imgsz=min(imgsz) if len(imgsz) == 1 else 0, torch_version=torch.__version__,
                        exporter=f"torch.onnx {exporter}", opset=opset, protocol=ROW_PROTOCOL,
                        model_protocol=MODEL_PROTOCOL, process_warmup_s=BUILD_WARMUP_S, items=tuple(items),
                        sources=tuple(s.name for s in sources), commands=(command,) if command else ())
    for name in (RUNNER, DOC):
        shutil.copyfile(SHIPPED / name, folder / name)
    write_manifest(folder, manifest)
    return ExportReport(str(folder), manifest, sum(i.kind == "row" for i in items),
                        sum(i.kind == "model" for i in items), exported, time.perf_counter() - started)


def _export_rows(folder: Path, keys: list[str], maker: RowMaker, exporter: str,
                 opset: int) -> tuple[list[tuple[str, tuple[InputSpec, ...]]], int]:
    """Each row's file and its inputs (name, shape); rows not on disk yet exported together (dynamo) or
    one by one (torchscript, or when the joint export fails: then an error names the row)."""
    files = [f"rows/{row_id(k)}.onnx" for k in keys]
    missing = [i for i, f in enumerate(files) if not (folder / f).exists()]
    made = {i: maker(keys[i]) for i in missing}
    graphs = export_rows([made[i] for i in missing], opset=opset) if exporter == "dynamo" and len(missing) > 1 else None
    for j, i in enumerate(missing):
        module, inputs = made[i]
        if graphs is not None:
            data = graphs[j][0]
        else:
            try:
                data = export_onnx(module, inputs, opset=opset, exporter=exporter)
            except BackendError as e:
                raise LutError(str(folder), f"row {maker.signatures[keys[i]].module} ({keys[i]}): {e.text}") from None
        _write(folder / files[i], data)
    out = []
    for i, f in enumerate(files):
        _, inputs = made[i] if i in made else maker(keys[i])
        shapes = [tuple(t.shape) for t in (inputs if isinstance(inputs, (list, tuple)) else [inputs])]
        out.append((f, _inputs(folder / f, shapes)))
    return out, len(missing)


def _inputs(path: Path, shapes: list[tuple[int, ...]]) -> tuple[InputSpec, ...]:
    """The graph's real inputs (the exporter drops unused ones) with the shapes they were exported at: an
    input named `in{n}` or `r{row}_in{n}` (profiles.backends.onnxrt) is the row's n-th tensor."""
    import onnx

    graph = onnx.load(str(path), load_external_data=False).graph
    inits = {i.name for i in graph.initializer}
    out = []
    for value in graph.input:
        if value.name in inits:
            continue
        n = value.name.rpartition("in")[2]
        if not n.isdigit() or int(n) >= len(shapes):
            raise LutError(str(path), f"the exported graph has an input {value.name!r} the row does not")
        out.append(InputSpec(value.name, shapes[int(n)]))
    return tuple(out)


def _write(path: Path, data: bytes) -> None:
    """Whole or not at all: a temporary name, then renamed."""
    tmp = path.with_name(path.name + ".part")
    try:
        tmp.write_bytes(data)
        os.replace(tmp, path)
    except OSError as e:
        raise LutError(str(path), f"cannot write: {e.strerror or e}") from None


__all__ = ["ExportReport", "export_folder", "model_id", "row_id"]
