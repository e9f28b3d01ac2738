"""`zoo lut import`: a device's measurements of an export (profiles.lutexport) become a latency table.

Rows become entries under their row keys, the whole models calibration records, and the fit is made
as a build makes it (profiles.lut.fit_calibration over every model record). The table's fingerprint is
the device's as the runner recorded it (CPU, cores, onnxruntime and its provider, threads, session
settings) with the export's torch and exporter, which made the graphs: it differs from any machine zoo
runs on, so the table prices anywhere and is never measured into (profiles.lut.LatencyTable.open_to_price).
Importing a second export's measurements from the same device into the same table adds to it.
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

from .fingerprint import DeviceFingerprint
from .latency import LatencyStats
from .lut import Calibration, LatencyTable, LutError, RowRef
from .lutmanifest import MANIFEST, Manifest, Measurements, read_manifest, read_measurements

RUNNER_NAME = "zoo lut runner"


@dataclass(frozen=True)
class ImportReport:
    path: str
    rows: int  # rows of the manifest
    rows_added: int
    models: int
    models_added: int
    not_measured: tuple[str, ...]  # labels or names of items with no timing yet (run the runner again)
    failed: tuple[tuple[str, str], ...]  # (label or name, the runner's error)
    seconds: float
    calibration: Calibration | None
    table: LatencyTable


def table_fingerprint(manifest: Manifest, meas: Measurements) -> DeviceFingerprint:
    """The device as the runner saw it, the export's torch and exporter (they made the graphs)."""
    fp = meas.device.fingerprint
    settings = {"graph_optimization_level": fp["graph_optimization_level"], "providers": list(fp["providers"]),
                "inter_op_num_threads": fp.get("inter_op_num_threads", 1),
                "execution_mode": fp.get("execution_mode", "ORT_SEQUENTIAL"),
                "allow_spinning": fp.get("allow_spinning", False), "exporter": manifest.exporter,
                "opset": manifest.opset, "io_binding": fp.get("io_binding", True),
                "runner": f"{RUNNER_NAME} {meas.device.runner}", "os": fp.get("os")}
    if isinstance(fp.get("provider_options"), dict) and fp["provider_options"]:  # TensorRT's fp16, ...
        settings["provider_options"] = sorted(f"{k}={v}" for k, v in fp["provider_options"].items())
    return DeviceFingerprint(cpu_model=str(fp["cpu_model"]), physical_cores=_opt_int(fp["physical_cores"]),
                             logical_cores=_opt_int(fp["logical_cores"]), machine=str(fp["machine"]),
                             torch_version=manifest.torch_version, backend="onnxruntime",
                             backend_version=str(fp["onnxruntime"]), device=str(fp["device"]), dtype="float32",
                             threads=int(fp["threads"]),
                             settings=tuple(sorted((k, tuple(v) if isinstance(v, list) else v)
                                                   for k, v in settings.items())))


def import_measurements(measurements: str | Path, out: str | Path, *,
                        manifest: str | Path | None = None) -> ImportReport:
    """Add the device's timings of the export to the table at `out` (created when absent) and fit it."""
    started = time.perf_counter()
    measurements = Path(measurements)
    man = read_manifest(Path(manifest) if manifest is not None else measurements.parent / MANIFEST)
    meas = read_measurements(measurements, man)
    table = LatencyTable.open_import(out, table_fingerprint(man, meas), protocol=meas.device.protocol,
                                     model_protocol=meas.device.model_protocol, form=man.form)
    threads, device = int(meas.device.fingerprint["threads"]), str(meas.device.fingerprint["device"])
    rows_added = models_added = 0
    not_measured: list[str] = []
    failed: list[tuple[str, str]] = []
    for kind in ("row", "model"):  # rows first: a model's record needs every row it sums
        for item in (i for i in man.items if i.kind == kind):
            what = str(item.label or item.key if kind == "row" else item.name)
            t = meas.timings.get(item.id)
            if t is None:
                if item.id in meas.errors:
                    failed.append((what, meas.errors[item.id]))
                else:
                    not_measured.append(what)
                continue
            stats = LatencyStats(median_ms=t.median_ms, p90_ms=t.p90_ms, mean_ms=t.mean_ms, cv=t.cv, runs=t.runs,
                                 warmup_runs=t.warmup_runs, threads=threads, device=device, loadavg=None)
            if kind == "row" and item.key not in table.entries:
                table.add_entry(RowRef(str(item.key), label=item.label), stats)
                rows_added += 1
            elif kind == "model" and item.name not in table.models:
                if all(k in table.entries for k in item.keys):  # a row that failed leaves its models out
                    table.add_model(str(item.name), item.keys, stats)
                    models_added += 1
    if table.models and not table.fit_is_current:
        table.save_fit()
    seconds = time.perf_counter() - started
    if rows_added or models_added:
        table.add_build(seconds, rows_added, models_added, [f"import {measurements}", *man.sources])
    if not table.entries:
        raise LutError(str(measurements), "no row was measured: nothing to import (run the runner first)")
    return ImportReport(str(out), sum(i.kind == "row" for i in man.items), rows_added,
                        sum(i.kind == "model" for i in man.items), models_added, tuple(not_measured), tuple(failed),
                        seconds, table.calibration, table)


def _opt_int(v: object) -> int | None:
    return v if isinstance(v, int) and not isinstance(v, bool) else None


__all__ = ["ImportReport", "import_measurements", "table_fingerprint"]
