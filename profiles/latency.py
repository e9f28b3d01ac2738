"""Latency with the hygiene of timm's benchmark: warm-up by time and count, fixed threads,
inference mode, CUDA synchronisation, median/p90/CV over repeated timed runs.

On these CPUs the first seconds of a fresh process can be 10-50x slower, so warm-up runs until both
`warmup_runs` and `warmup_s` are reached. One thread by default: rankings are stable to 1-4% there.
"""
from __future__ import annotations

import contextlib
import os
import statistics
import time
from dataclasses import dataclass
from typing import Any, Callable, Iterator

import torch
from torch import nn


@dataclass(frozen=True)
class TimingProtocol:
    """How one measurement runs, whatever the backend: warm-up until both count and time are reached
    (capped by `max_warmup_s`), then `runs` timed calls."""

    runs: int = 30
    warmup_runs: int = 5
    warmup_s: float = 1.0
    max_warmup_s: float = 30.0

    def __post_init__(self) -> None:
        if self.runs < 1:
            raise ValueError(f"runs must be >= 1, got {self.runs}")
        if self.warmup_runs < 0 or self.warmup_s < 0 or self.max_warmup_s < 0:
            raise ValueError("warmup_runs, warmup_s and max_warmup_s must be >= 0")

    def as_dict(self) -> dict[str, Any]:
        return {"runs": self.runs, "warmup_runs": self.warmup_runs, "warmup_s": self.warmup_s,
                "max_warmup_s": self.max_warmup_s}


@dataclass(frozen=True)
class LatencyStats:
    median_ms: float
    p90_ms: float
    mean_ms: float
    cv: float  # standard deviation / mean of the timed runs
    runs: int
    warmup_runs: int
    threads: int
    device: str
    loadavg: tuple[float, float, float] | None

    def as_dict(self) -> dict[str, Any]:
        return {"median": round(self.median_ms, 4), "p90": round(self.p90_ms, 4), "cv": round(self.cv, 4)}


def summarize(samples_ms: list[float], *, warmup_runs: int, threads: int, device: str) -> LatencyStats:
    xs = sorted(samples_ms)
    mean = statistics.fmean(xs)
    sd = statistics.pstdev(xs) if len(xs) > 1 else 0.0
    return LatencyStats(median_ms=statistics.median(xs), p90_ms=percentile(xs, 90), mean_ms=mean,
                        cv=sd / mean if mean > 0 else 0.0, runs=len(xs), warmup_runs=warmup_runs,
                        threads=threads, device=device, loadavg=loadavg())


def percentile(sorted_xs: list[float], q: float) -> float:
    """Linear-interpolated percentile of an already sorted list."""
    if not sorted_xs:
        raise ValueError("no samples")
    pos = (len(sorted_xs) - 1) * q / 100
    lo = int(pos)
    hi = min(lo + 1, len(sorted_xs) - 1)
    return sorted_xs[lo] + (sorted_xs[hi] - sorted_xs[lo]) * (pos - lo)


def loadavg() -> tuple[float, float, float] | None:
    try:
        return os.getloadavg()
    except OSError:
        return None


# -- is this measurement worth reading? ----------------------------------------------------------------------
MAX_CV = 0.10  # run-to-run CV above which a latency is noise more than a figure: on a quiet machine the
#                timed runs of one model differ by 1-5%; a loaded one gave 33.6 to 318.7 ms for one model
HALF_ON_CPU_SLOWDOWN = "15-20x"  # float16 YOLO models on a CPU without native float16 kernels, against float32
#                                  (yolov5n at 320 px here: 64 ms float32, 983 ms float16); bfloat16 is as slow
#                                  without AVX512-BF16/AMX and as fast as float32 with them (51 ms here)


@dataclass(frozen=True)
class LatencyWarning:
    """Why a latency may not mean what it says: `load` (more runnable work than cores), `cv` (the timed runs
    disagree), `half-on-cpu` (a dtype CPUs run slowly)."""

    code: str
    text: str

    def as_dict(self) -> dict[str, str]:
        return {"code": self.code, "text": self.text}


def usable_cores() -> int:
    """The cores this process may run on (its affinity, not the machine's count)."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def cpu_has_fast(dtype: torch.dtype) -> bool:
    """Whether this CPU has native kernels for a half dtype (AVX512-BF16 or AMX for bfloat16, AMX-FP16 for
    float16); torch's own capability probes, read as False where a torch build lacks them."""
    probes = {torch.bfloat16: ("_is_avx512_bf16_supported", "_is_amx_tile_supported"),
              torch.float16: ("_is_amx_fp16_supported",)}.get(dtype, ())
    for name in probes:
        probe = getattr(torch.cpu, name, None)
        try:
            if probe is not None and probe():
                return True
        except RuntimeError:
            continue
    return False


def half_on_cpu(device: Any, dtype: torch.dtype) -> LatencyWarning | None:
    """float16/bfloat16 timed on a CPU without native kernels for it: valid, but nothing like the float32 or
    GPU figure."""
    if torch.device(device).type != "cpu" or dtype not in (torch.float16, torch.bfloat16) or cpu_has_fast(dtype):
        return None
    name = str(dtype).replace("torch.", "")
    return LatencyWarning("half-on-cpu", f"{name} on this CPU runs about {HALF_ON_CPU_SLOWDOWN} slower than "
                                         f"float32 (it has no native {name} kernels): time float32 on CPU, or "
                                         f"{name} on a GPU")


def latency_warnings(stats: LatencyStats, *, dtype: torch.dtype = torch.float32,
                     cores: int | None = None) -> tuple[LatencyWarning, ...]:
    """What makes one measurement doubtful: a 1-minute load above the cores, a CV above MAX_CV, half on CPU."""
    cores = usable_cores() if cores is None else cores
    out = []
    if stats.loadavg is not None and stats.loadavg[0] > cores:
        out.append(LatencyWarning("load", f"load average {stats.loadavg[0]:.2f} is above the {cores} core"
                                          f"{'s' if cores != 1 else ''} this process can use: other work shares "
                                          f"the CPUs and latencies come out slower and noisier than on a quiet "
                                          f"machine"))
    if stats.cv > MAX_CV:
        out.append(LatencyWarning("cv", f"the {stats.runs} timed runs vary by CV {stats.cv:.3f} (above {MAX_CV:g}): "
                                        f"the median is unreliable; time more runs on a quieter machine"))
    half = half_on_cpu(stats.device, dtype)
    if half is not None:
        out.append(half)
    return tuple(out)


@contextlib.contextmanager
def thread_count(threads: int) -> Iterator[None]:
    """Run with `threads` intra-op threads, restoring the previous setting after."""
    if threads < 1:
        raise ValueError(f"threads must be >= 1, got {threads}")
    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def time_callable(fn: Callable[[], Any], *, device: torch.device, runs: int = 30, warmup_runs: int = 5,
                  warmup_s: float = 1.0, max_warmup_s: float = 30.0) -> tuple[list[float], int]:
    """Warm up (both count and time), then time `runs` calls; returns (samples in ms, warm-up runs)."""
    start = time.perf_counter()
    done = 0
    while done < warmup_runs or (time.perf_counter() - start < warmup_s
                                 and time.perf_counter() - start < max_warmup_s):
        fn()
        _sync(device)
        done += 1
    samples = []
    for _ in range(runs):
        _sync(device)
        t0 = time.perf_counter()
        fn()
        _sync(device)
        samples.append((time.perf_counter() - t0) * 1000.0)
    return samples, done


def time_module(module: nn.Module, inputs: Any, *, device: str = "cpu", dtype: torch.dtype = torch.float32,
                threads: int = 1, protocol: TimingProtocol = TimingProtocol()) -> LatencyStats:
    """Eager latency of `module(inputs)` (a tensor, or a list for multi-input rows), both moved to
    device/dtype, in eval and inference mode with `threads` intra-op threads."""
    dev = torch.device(device)
    module = module.to(device=dev, dtype=dtype).eval()
    inputs = _to(inputs, dev, dtype)
    with thread_count(threads), torch.inference_mode():
        samples, warm = time_callable(lambda: module(inputs), device=dev, runs=protocol.runs,
                                      warmup_runs=protocol.warmup_runs, warmup_s=protocol.warmup_s,
                                      max_warmup_s=protocol.max_warmup_s)
    return summarize(samples, warmup_runs=warm, threads=threads, device=str(dev))


def measure_latency(model: nn.Module, *, imgsz: int = 640, batch: int = 1, device: str = "cpu",
                    dtype: torch.dtype = torch.float32, threads: int = 1, runs: int = 30,
                    warmup_runs: int = 5, warmup_s: float = 1.0) -> LatencyStats:
    """End-to-end latency of `model` (moved to device/dtype, eval mode) on a random image batch."""
    if runs < 1:
        raise ValueError(f"runs must be >= 1, got {runs}")
    x = torch.randn(batch, _in_channels(model), imgsz, imgsz)
    return time_module(model, x, device=device, dtype=dtype, threads=threads,
                       protocol=TimingProtocol(runs=runs, warmup_runs=warmup_runs, warmup_s=warmup_s))


def measure_row_latency(model: nn.Module, *, imgsz: int = 640, batch: int = 1, device: str = "cpu",
                        dtype: torch.dtype = torch.float32, threads: int = 1, runs: int = 30,
                        warmup_runs: int = 5, warmup_s: float = 1.0) -> dict[int, LatencyStats]:
    """Per-row latency of a ZooModel: each row timed around its call inside the same forward passes."""
    dev = torch.device(device)
    model = model.to(device=dev, dtype=dtype).eval()
    x = torch.randn(batch, _in_channels(model), imgsz, imgsz, device=dev, dtype=dtype)
    samples: dict[int, list[float]] = {}
    recording = [False]

    def hook(index: int, module: nn.Module, inp: Any) -> Any:
        if not recording[0]:
            return module(inp)
        _sync(dev)
        t0 = time.perf_counter()
        out = module(inp)
        _sync(dev)
        samples.setdefault(index, []).append((time.perf_counter() - t0) * 1000.0)
        return out

    with thread_count(threads), torch.inference_mode():
        _, warm = time_callable(lambda: model.run(x, hook), device=dev, runs=0, warmup_runs=warmup_runs,
                                warmup_s=warmup_s)
        recording[0] = True
        for _ in range(runs):
            model.run(x, hook)
    return {i: summarize(s, warmup_runs=warm, threads=threads, device=str(dev)) for i, s in samples.items()}


def _to(value: Any, device: torch.device, dtype: torch.dtype) -> Any:
    """Tensors (floating ones cast to dtype) moved to device, through lists and tuples."""
    if isinstance(value, torch.Tensor):
        return value.to(device=device, dtype=dtype if value.is_floating_point() else value.dtype)
    if isinstance(value, (list, tuple)):
        return type(value)(_to(v, device, dtype) for v in value)
    return value


def _in_channels(model: nn.Module) -> int:
    cfg = getattr(model, "config", None)
    return int(getattr(cfg, "ch", 3))
