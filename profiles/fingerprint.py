"""The device fingerprint a latency table is keyed by: the machine (CPU model, cores), the backend with
its version and settings, torch, dtype, device and threads. Milliseconds measured under one fingerprint
say nothing about another, so a table is refused where the fingerprints differ and the message names
the fields that do.
"""
from __future__ import annotations

import os
import platform
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any, Mapping

import torch

from .backends.base import Backend, settings_tuple

CPUINFO = Path("/proc/cpuinfo")


class _Absent:
    """A backend setting one fingerprint has and the other lacks."""

    def __repr__(self) -> str:
        return "absent"


ABSENT = _Absent()


@dataclass(frozen=True)
class DeviceFingerprint:
    cpu_model: str
    physical_cores: int | None
    logical_cores: int | None
    machine: str  # the architecture, platform.machine()
    torch_version: str
    backend: str
    backend_version: str
    device: str
    dtype: str
    threads: int
    settings: tuple[tuple[str, Any], ...]  # the backend's own settings, sorted pairs

    def as_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["settings"] = {k: list(v) if isinstance(v, tuple) else v for k, v in self.settings}
        return d

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> DeviceFingerprint:
        """Inverse of as_dict; a missing or extra field is a ValueError naming it."""
        names = [f.name for f in fields(cls)]
        missing = [n for n in names if n not in data]
        extra = [k for k in data if k not in names]
        if missing or extra:
            raise ValueError("fingerprint " + "; ".join(
                ([f"lacks {', '.join(missing)}"] if missing else []) + ([f"has unknown {', '.join(extra)}"]
                                                                        if extra else [])))
        if not isinstance(data["settings"], Mapping):
            raise ValueError("fingerprint settings must be a mapping")
        return cls(**{**dict(data), "settings": settings_tuple(dict(data["settings"]))})


@dataclass(frozen=True)
class FieldDiff:
    field: str  # "threads", or "settings.graph_optimization_level" for a backend setting
    table: Any
    here: Any


def device_fingerprint(backend: Backend) -> DeviceFingerprint:
    """This machine under `backend`'s settings."""
    info = backend.fingerprint()
    physical, logical = cpu_cores()
    return DeviceFingerprint(cpu_model=cpu_model(), physical_cores=physical, logical_cores=logical,
                             machine=platform.machine(), torch_version=torch.__version__, backend=info.name,
                             backend_version=info.version, device=info.device, dtype=info.dtype,
                             threads=info.threads, settings=info.settings)


def fingerprint_diff(table: DeviceFingerprint, here: DeviceFingerprint) -> tuple[FieldDiff, ...]:
    """The fields that differ, in declaration order, backend settings one by one."""
    out = []
    for f in fields(DeviceFingerprint):
        if f.name == "settings":
            a, b = dict(table.settings), dict(here.settings)
            out += [FieldDiff(f"settings.{k}", a.get(k, ABSENT), b.get(k, ABSENT))
                    for k in sorted(a.keys() | b.keys()) if a.get(k, ABSENT) != b.get(k, ABSENT)]
        elif getattr(table, f.name) != getattr(here, f.name):
            out.append(FieldDiff(f.name, getattr(table, f.name), getattr(here, f.name)))
    return tuple(out)


def describe_diff(diffs: tuple[FieldDiff, ...]) -> str:
    """One line: `threads 1 (table) vs 2 (here); backend_version 1.31.0 (table) vs 1.32.0 (here)`.

    Where the backend itself differs its settings are another backend's, summed up in one phrase."""
    other_backend = any(d.field == "backend" for d in diffs)
    parts = [f"{d.field} {_show(d.table)} (table) vs {_show(d.here)} (here)" for d in diffs
             if not (other_backend and d.field.startswith("settings."))]
    if other_backend and any(d.field.startswith("settings.") for d in diffs):
        parts.append("settings are another backend's")
    return "; ".join(parts)


def cpu_model(cpuinfo: Path = CPUINFO) -> str:
    """The CPU's model name from /proc/cpuinfo (x86 `model name`, Arm `Hardware`/`Model`), else platform's."""
    try:
        text = cpuinfo.read_text()
    except OSError:
        text = ""
    for key in ("model name", "Hardware", "Model", "cpu model", "Processor"):
        for line in text.splitlines():
            name, sep, value = line.partition(":")
            if sep and name.strip() == key and value.strip():
                return value.strip()
    return platform.processor() or platform.machine() or "unknown"


def cpu_cores(cpuinfo: Path = CPUINFO) -> tuple[int | None, int | None]:
    """(physical, logical) cores: distinct (physical id, core id) pairs of /proc/cpuinfo, os.cpu_count()."""
    logical = os.cpu_count()
    try:
        text = cpuinfo.read_text()
    except OSError:
        return None, logical
    pairs, phys, core = set(), None, None
    for line in text.splitlines() + [""]:
        name, _, value = (s.strip() for s in line.partition(":"))
        if name == "physical id":
            phys = value
        elif name == "core id":
            core = value
        elif not name:  # a blank line ends one processor's block
            if core is not None:
                pairs.add((phys, core))
            phys = core = None
    return (len(pairs) or None), logical


def _show(value: Any) -> str:
    return "absent" if value is ABSENT else "none" if value is None else (", ".join(map(str, value)) if isinstance(value, tuple) else str(value))
