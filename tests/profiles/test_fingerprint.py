"""The device fingerprint: what it reads of the machine, and which fields a comparison names."""
from __future__ import annotations

import dataclasses
import platform

import pytest
import torch

from profiles.backends import TorchBackend, get_backend
from profiles.fingerprint import (ABSENT, DeviceFingerprint, FieldDiff, cpu_cores, cpu_model, describe_diff,
                                  device_fingerprint, fingerprint_diff)

# Two sockets of two cores with two hyper-threads each: 8 logical processors, 4 physical cores.
CPUINFO_X86 = "".join(
    f"processor\t: {i}\nmodel name\t: Test CPU 9000\nphysical id\t: {i // 4}\ncore id\t\t: {(i // 2) % 2}\n\n"
    for i in range(8))
CPUINFO_ARM = "processor\t: 0\nBogoMIPS\t: 50.00\n\nprocessor\t: 1\nBogoMIPS\t: 50.00\n\nHardware\t: Test SoC\n"


def test_cpu_model_and_cores_from_cpuinfo(tmp_path) -> None:
    x86 = tmp_path / "x86"
    x86.write_text(CPUINFO_X86)
    assert cpu_model(x86) == "Test CPU 9000"
    assert cpu_cores(x86)[0] == 4
    arm = tmp_path / "arm"
    arm.write_text(CPUINFO_ARM)
    assert cpu_model(arm) == "Test SoC"
    assert cpu_cores(arm)[0] is None  # no core ids: unknown, not guessed
    assert cpu_model(tmp_path / "absent") == (platform.processor() or platform.machine() or "unknown")


def test_fingerprint_of_this_machine() -> None:
    fp = device_fingerprint(TorchBackend(threads=2))
    assert (fp.backend, fp.backend_version, fp.torch_version, fp.threads, fp.dtype, fp.device) == (
        "torch", torch.__version__, torch.__version__, 2, "float32", "cpu")
    assert fp.cpu_model and fp.machine == platform.machine()
    assert DeviceFingerprint.from_dict(fp.as_dict()) == fp


def test_diff_names_the_fields_that_differ() -> None:
    a = device_fingerprint(TorchBackend())
    assert fingerprint_diff(a, a) == ()
    b = dataclasses.replace(a, threads=4, cpu_model="Other CPU",
                            settings=a.settings + (("extra", 1),))
    diffs = fingerprint_diff(a, b)
    assert diffs == (FieldDiff("cpu_model", a.cpu_model, "Other CPU"), FieldDiff("threads", 1, 4),
                     FieldDiff("settings.extra", ABSENT, 1))
    assert describe_diff(diffs) == (f"cpu_model {a.cpu_model} (table) vs Other CPU (here); threads 1 (table) vs "
                                    "4 (here); settings.extra absent (table) vs 1 (here)")


def test_diff_across_backends_sums_up_their_settings() -> None:
    pytest.importorskip("onnxruntime")
    pytest.importorskip("onnxscript")
    ort_all = device_fingerprint(get_backend("onnxruntime"))
    ort_basic = device_fingerprint(get_backend("onnxruntime", optimization="ORT_ENABLE_BASIC"))
    assert describe_diff(fingerprint_diff(ort_all, ort_basic)) == (
        "settings.graph_optimization_level ORT_ENABLE_ALL (table) vs ORT_ENABLE_BASIC (here)")
    text = describe_diff(fingerprint_diff(device_fingerprint(TorchBackend()), ort_all))
    assert text.startswith("backend torch (table) vs onnxruntime (here); backend_version ")
    assert text.endswith("settings are another backend's")


def test_from_dict_names_missing_and_unknown_fields() -> None:
    d = device_fingerprint(TorchBackend()).as_dict()
    del d["threads"]
    d["colour"] = "blue"
    with pytest.raises(ValueError, match="lacks threads; has unknown colour"):
        DeviceFingerprint.from_dict(d)
