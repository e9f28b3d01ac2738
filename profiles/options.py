"""The run options every command shares (imgsz, batch, threads, runs, device, dtype), checked in one place.

The API checks them before anything is built or allocated (profile_model, the search's Measure) and the
face's argparse types call the same functions, so a flag and its parameter are refused with the same words:
an OptionError naming `imgsz=` for the API and `--imgsz` on the command line.
"""
from __future__ import annotations

from typing import Any

import torch

from zoo.errors import OptionError
from zoo.limits import MAX_BATCH, MAX_IMGSZ, MAX_RUNS, MAX_THREADS, check_option

# torch dtypes by the names the command line and the JSON report use
DTYPES: dict[str, torch.dtype] = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}
DEVICE_TYPES = ("cpu", "cuda", "mps")  # what latency can be measured on
BOUNDS: dict[str, tuple[int, int]] = {"imgsz": (1, MAX_IMGSZ), "batch": (1, MAX_BATCH),
                                      "threads": (1, MAX_THREADS), "runs": (1, MAX_RUNS)}


def check_int(param: str, value: Any, *, source: str | None = None) -> int:
    """One of BOUNDS' integer options in its range (OptionError otherwise)."""
    low, high = BOUNDS[param]
    return check_option(param, value, low, high, source=source)


def check_device(device: Any, *, source: str | None = None) -> torch.device:
    """cpu, cuda, cuda:N or mps, and present on this machine."""
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError, ValueError) as e:
        first = (str(e).strip().splitlines() or [""])[0]
        raise OptionError(source, "device", device, f"is not a device ({first}); use cpu, cuda, cuda:N or mps") \
            from None
    if dev.type not in DEVICE_TYPES:
        raise OptionError(source, "device", device, "is not supported: use cpu, cuda, cuda:N or mps")
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise OptionError(source, "device", device, "needs CUDA, which is not available on this machine "
                                                        "(use cpu)")
        count = torch.cuda.device_count()
        if dev.index is not None and dev.index >= count:
            raise OptionError(source, "device", device, f"does not exist: this machine has {count} CUDA "
                                                        f"device{'s' if count != 1 else ''} (cuda:0..cuda:{count - 1})")
    if dev.type == "mps" and not (torch.backends.mps.is_available()):
        raise OptionError(source, "device", device, "needs Apple's MPS, which is not available on this machine")
    return dev


def check_dtype(dtype: Any, *, source: str | None = None) -> torch.dtype:
    """A torch dtype or its name (float32, float16, bfloat16)."""
    if isinstance(dtype, torch.dtype) and dtype in DTYPES.values():
        return dtype
    if isinstance(dtype, str) and dtype.removeprefix("torch.") in DTYPES:
        return DTYPES[dtype.removeprefix("torch.")]
    raise OptionError(source, "dtype", dtype, f"is not one of {', '.join(DTYPES)}")


def dtype_name(dtype: torch.dtype) -> str:
    return str(dtype).replace("torch.", "")


def check_run_options(source: str | None = None, *, imgsz: Any = None, batch: Any = None, threads: Any = None,
                      runs: Any = None, device: Any = None, dtype: Any = None) -> None:
    """Every option given (not None), in this order, before anything is built or allocated."""
    for param, value in (("imgsz", imgsz), ("batch", batch), ("threads", threads), ("runs", runs)):
        if value is not None:
            check_int(param, value, source=source)
    if device is not None:
        check_device(device, source=source)
    if dtype is not None:
        check_dtype(dtype, source=source)
