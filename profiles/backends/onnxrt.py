"""ONNX Runtime on CPU: what a model shipped through ORT costs, the same timing protocol as eager torch.

Export: `torch.onnx.export(..., dynamo=True)`, the torch.export-based exporter (needs `onnxscript`, which
brings `onnx`). Why this one and not the TorchScript exporter (`dynamo=False`, needs only `onnx`):
  - it is torch's default and maintained exporter since 2.9; the TorchScript one is deprecated and warns;
  - its graph is the deployer's graph: static shapes, no Shape/Gather/Constant/Identity chains left over
    from Python shape arithmetic (yolov8s at 320 px: 232 nodes against 480; the conv, activation and
    concat nodes are the same), so ORT's optimisation level acts on compute, not on bookkeeping;
  - both run offline and agree with eager torch to 4e-5 on the built-ins (yolov5s, yolov8s, damo-yolo-t;
    RT-DETR's top-k query selection differs on near-tied random scores with either exporter).
It costs about a second per row export (the TorchScript one about 0.3 s), which the per-row warm-up
dominates anyway for one model; a latency table exports thousands of rows, and there `exporter=
"torchscript"` (recorded in the fingerprint) is the faster choice: measured here on 16 yolov5s rows at
320 px, 5.1 s for the TorchScript exports against 16.5 s for one dynamo export of the 16 together (the
fastest dynamo path, below), and the sessions of the two graphs ran within 1-3% of each other on every
row but one small Conv (+33%, 0.15 ms in a 40 ms model). Every export works on a deep copy: exporting traces the module, and a module that
caches tensors (Detect's anchors) must not keep traced ones.

Session: `intra_op_num_threads` pinned to the backend's threads, `inter_op_num_threads=1`, sequential
execution, spinning off for both thread pools (a spinning pool would steal the timed thread's core),
the graph optimisation level recorded (default ORT_ENABLE_ALL; it alone moves latency 1.7x).
Timed calls run through an IOBinding with inputs and outputs allocated once (`run_with_iobinding`),
as a deployment loop runs: a plain `session.run` allocates (and page-faults) fresh output arrays at
every call, which inside a whole graph ORT's arena never does, so a row timed alone would pay for a
copy the model does not make (megabytes per call for an early row at 640 px).

Many rows at once (`time_rows`, what a latency table build asks for): each export pays a fixed cost
(about a second: the exporter rebuilds its op registry and decomposition tables on every call), so
rows are exported together, CHUNK at a time, as one graph of independent subgraphs (row i reads only
inputs `r{i}_in*` and writes `r{i}_out*`), and each row's own graph is cut out of it with
`onnx.utils.Extractor` by those names: exactly the nodes the row's own export would have. A chunk that
cannot be exported or cut is exported row by row, so an error still names the row.
"""
from __future__ import annotations

import contextlib
import copy
import importlib.metadata
import io
import logging
import warnings
from typing import Any, Callable, Iterable, Iterator, Mapping, Sequence

import torch
from torch import nn

from ..latency import LatencyStats, TimingProtocol, summarize, time_callable
from .base import (BackendError, BackendInfo, Inputs, Shape, check_threads, dtype_name, random_inputs,
                   settings_tuple)

EXPORTERS = ("dynamo", "torchscript")
OPT_LEVELS = ("ORT_DISABLE_ALL", "ORT_ENABLE_BASIC", "ORT_ENABLE_EXTENDED", "ORT_ENABLE_LAYOUT", "ORT_ENABLE_ALL")
DEFAULT_OPSET = 20  # pinned so a table does not change meaning when torch's default opset moves
CHUNK = 16  # rows per export in time_rows
EXTRA_HINT = "install the onnx extra: pip install 'zoo-nas[onnx]'"
GPU_PROVIDERS = ("CUDAExecutionProvider", "TensorrtExecutionProvider")  # run on a CUDA device: bind there
GPU_HINT = "CUDA and TensorRT come with onnxruntime-gpu (pip install onnxruntime-gpu) on a machine with a GPU"


def _ort() -> Any:
    try:
        import onnxruntime
    except ImportError:
        raise BackendError(f"the onnxruntime backend needs onnxruntime; {EXTRA_HINT}") from None
    return onnxruntime


def _check_exporter(exporter: str = "dynamo") -> None:
    for dist in ("onnx", "onnxscript") if exporter == "dynamo" else ("onnx",):
        try:
            importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:
            raise BackendError(f"exporting to ONNX needs {dist}; {EXTRA_HINT}") from None


def resolve_providers(available: Sequence[str], asked: Sequence[str] | str) -> tuple[str, ...]:
    """Execution providers by full name or short name (`cpu`, `cuda`, `tensorrt`: a full name without
    `ExecutionProvider`, any case), checked against what this onnxruntime has; a GPU provider gets the CPU
    provider after it, for the nodes it cannot run (how ORT deploys them). One ValueError line otherwise."""
    asked = [asked] if isinstance(asked, str) else list(asked)
    if not asked:
        raise ValueError("providers=[]: name at least one execution provider")
    out: list[str] = []
    for name in asked:
        short = name.lower().replace("executionprovider", "")
        match = [p for p in available if p.lower().replace("executionprovider", "") == short]
        if not match:
            raise ValueError(f"providers={name!r}: not available in this onnxruntime "
                             f"(available: {', '.join(available)}); {GPU_HINT}")
        out += [p for p in match if p not in out]
    if out[0] != "CPUExecutionProvider" and "CPUExecutionProvider" in available and "CPUExecutionProvider" not in out:
        out.append("CPUExecutionProvider")
    return tuple(out)


class OnnxRuntimeBackend:
    """ORT's CPU provider (or `providers=`: CUDA, TensorRT, ... by full or short name) with pinned
    threads, inter-op 1, sequential, spinning off; a GPU provider times on `device` cuda[:N]."""

    name = "onnxruntime"

    def __init__(self, *, threads: int = 1, device: str = "cpu", dtype: torch.dtype = torch.float32,
                 optimization: str = "ORT_ENABLE_ALL", providers: Sequence[str] = ("CPUExecutionProvider",),
                 opset: int = DEFAULT_OPSET, exporter: str = "dynamo") -> None:
        self.threads = check_threads(threads)
        if exporter not in EXPORTERS:
            raise ValueError(f"exporter={exporter!r}: one of {', '.join(EXPORTERS)}")
        self.exporter = exporter
        if dtype != torch.float32:
            raise ValueError(f"dtype={dtype}: the onnxruntime backend times float32 exports")
        if optimization not in OPT_LEVELS:
            raise ValueError(f"optimization={optimization!r}: one of {', '.join(OPT_LEVELS)}")
        self.ort = _ort()
        self.providers = resolve_providers(self.ort.get_available_providers(), providers)
        gpu = self.providers[0] in GPU_PROVIDERS
        if device != "cpu" and not (gpu and (device == "cuda" or device.startswith("cuda:"))):
            raise ValueError(f"device={device!r}: the onnxruntime backend times cpu, or cuda[:N] with a CUDA or "
                             "TensorRT provider (--provider cuda)")
        self.device = (device if device.startswith("cuda") else "cuda") if gpu else "cpu"
        self.device_id = int(self.device.partition(":")[2] or 0) if gpu else 0
        self.dtype, self.optimization, self.opset = dtype, optimization, int(opset)

    def fingerprint(self) -> BackendInfo:
        settings = {"graph_optimization_level": self.optimization, "providers": list(self.providers),
                    "inter_op_num_threads": 1, "execution_mode": "ORT_SEQUENTIAL", "allow_spinning": False,
                    "exporter": f"torch.onnx {self.exporter}", "opset": self.opset, "io_binding": True,
                    "onnxscript": _version("onnxscript"), "onnx": _version("onnx")}
        return BackendInfo(name=self.name, version=self.ort.__version__, device=self.device,
                           dtype=dtype_name(self.dtype), threads=self.threads, settings=settings_tuple(settings))

    def time_model(self, model: nn.Module, shape: Shape | Sequence[Shape],
                   protocol: TimingProtocol = TimingProtocol()) -> LatencyStats:
        return self.time_row(model, random_inputs(shape), protocol)

    def time_row(self, module: nn.Module, inputs: Inputs,
                 protocol: TimingProtocol = TimingProtocol()) -> LatencyStats:
        return self.timer(module, inputs)(protocol)

    def timer(self, module: nn.Module, inputs: Inputs) -> Callable[[TimingProtocol], LatencyStats]:
        """Export and load once; the returned callable times the session under any protocol (a short
        screen, then a full measurement, share one export)."""
        return self._graph_timer(export_onnx(module, inputs, opset=self.opset, exporter=self.exporter),
                                 _tensors(inputs),
                                 [f"in{i}" for i in range(len(_tensors(inputs)))])

    def time_rows(self, items: Iterable[tuple[nn.Module, Inputs]],
                  protocol: TimingProtocol = TimingProtocol()) -> Iterator[LatencyStats]:
        """Each (module, inputs) timed alone, in order, exported CHUNK rows at a time (the module
        docstring says why and how); yields as each row is timed."""
        chunk: list[tuple[nn.Module, Inputs]] = []
        for item in items:
            chunk.append(item)
            if len(chunk) == CHUNK:
                yield from self._time_chunk(chunk, protocol)
                chunk = []
        if chunk:
            yield from self._time_chunk(chunk, protocol)

    def _time_chunk(self, chunk: list[tuple[nn.Module, Inputs]], protocol: TimingProtocol) -> Iterator[LatencyStats]:
        graphs = export_rows(chunk, opset=self.opset) if len(chunk) > 1 and self.exporter == "dynamo" else None
        for i, (module, inputs) in enumerate(chunk):
            if graphs is None:
                yield self.time_row(module, inputs, protocol)
            else:
                model_bytes, names = graphs[i]
                yield self._graph_timer(model_bytes, _tensors(inputs), names)(protocol)

    def _graph_timer(self, model_bytes: bytes, tensors: list[torch.Tensor],
                     names: list[str]) -> Callable[[TimingProtocol], LatencyStats]:
        session = self.session(model_bytes)
        run = bound_run(self.ort, session, dict(zip(names, tensors)),
                        device=("cuda", self.device_id) if self.device != "cpu" else ("cpu", 0))

        def measure(protocol: TimingProtocol) -> LatencyStats:
            samples, warm = time_callable(run, device=torch.device("cpu"), runs=protocol.runs,
                                          warmup_runs=protocol.warmup_runs, warmup_s=protocol.warmup_s,
                                          max_warmup_s=protocol.max_warmup_s)
            return summarize(samples, warmup_runs=warm, threads=self.threads, device=self.device)

        return measure

    def session(self, model_bytes: bytes) -> Any:
        """An InferenceSession with this backend's settings."""
        ort = self.ort
        so = ort.SessionOptions()
        so.intra_op_num_threads = self.threads
        so.inter_op_num_threads = 1
        so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        so.graph_optimization_level = getattr(ort.GraphOptimizationLevel, self.optimization)
        so.add_session_config_entry("session.intra_op.allow_spinning", "0")
        so.add_session_config_entry("session.inter_op.allow_spinning", "0")
        so.log_severity_level = 3  # errors only: ORT's warnings would go to stderr past the face
        options = [{"device_id": str(self.device_id)} if p in GPU_PROVIDERS else {} for p in self.providers]
        try:
            return ort.InferenceSession(model_bytes, sess_options=so, providers=list(self.providers),
                                        provider_options=options)
        except Exception as e:  # noqa: BLE001 - ORT raises its own exception types
            raise BackendError(f"onnxruntime cannot load the exported graph: {_first_line(e)}") from None


def settings_kwargs(settings: Mapping[str, Any]) -> dict[str, Any]:
    """OnnxRuntimeBackend's constructor settings from its fingerprint's settings (those it records)."""
    out: dict[str, Any] = {}
    if settings.get("graph_optimization_level") in OPT_LEVELS:
        out["optimization"] = settings["graph_optimization_level"]
    exporter = str(settings.get("exporter", "")).rpartition(" ")[2]
    if exporter in EXPORTERS:
        out["exporter"] = exporter
    if isinstance(settings.get("opset"), int):
        out["opset"] = settings["opset"]
    providers = settings.get("providers")
    if isinstance(providers, (list, tuple)) and providers and all(isinstance(p, str) for p in providers):
        out["providers"] = tuple(providers)
    return out


class _Flat(nn.Module):
    """Positional tensors in (a multi-input row gets them back as its list), tensor leaves out."""

    def __init__(self, module: nn.Module, multi: bool) -> None:
        super().__init__()
        self.module, self.multi = module, multi

    def forward(self, *xs: torch.Tensor) -> tuple[torch.Tensor, ...]:
        out = self.module(list(xs) if self.multi else xs[0])
        return tuple(tensor_leaves(out))


def export_onnx(module: nn.Module, inputs: Inputs, *, opset: int = DEFAULT_OPSET, exporter: str = "dynamo") -> bytes:
    """`module` (a deep copy, eval mode) as an ONNX model for exactly these input shapes.

    Outputs are the tensors of whatever the module returns (tuples, lists and dicts flattened in order),
    so a head that returns (predictions, raw maps) in eval exports all of them; a module that returns no
    tensor, or that torch.onnx cannot trace, is a BackendError naming the module.
    """
    _check_exporter(exporter)
    what = type(module).__name__
    multi = isinstance(inputs, (list, tuple))
    xs = tuple(t.detach().clone() for t in (inputs if multi else [inputs]))  # no inference tensors
    wrapper = _Flat(copy.deepcopy(module), multi).eval()
    with torch.no_grad():
        if not tensor_leaves(wrapper.module(list(xs) if multi else xs[0])):
            raise BackendError(f"cannot export {what} to ONNX: it returns no tensor")
    names = [f"in{i}" for i in range(len(xs))]
    try:
        with _quiet_export():
            if exporter == "torchscript":
                buf = io.BytesIO()
                torch.onnx.export(wrapper, xs, buf, dynamo=False, verbose=False, opset_version=opset,
                                  input_names=names)
                return buf.getvalue()
            program = torch.onnx.export(wrapper, xs, dynamo=True, verbose=False, opset_version=opset,
                                        input_names=names, external_data=False)
        return program.model_proto.SerializeToString()
    except BackendError:
        raise
    except Exception as e:  # noqa: BLE001 - the exporter raises many types; the user needs one line
        raise BackendError(f"cannot export {what} to ONNX (torch.onnx, {exporter}): {_first_line(e)}") from None


def feeds_for(session: Any, inputs: Inputs) -> dict[str, Any]:
    """The session's inputs by name (`in0`, `in1`, ...) as float32 numpy arrays; inputs the exporter
    dropped as unused are left out."""
    return _named_feeds(session, {f"in{i}": t for i, t in enumerate(_tensors(inputs))})


def _named_feeds(session: Any, tensors: dict[str, torch.Tensor]) -> dict[str, Any]:
    arrays = {n: t.detach().to("cpu", torch.float32).contiguous().numpy() for n, t in tensors.items()}
    wanted = [i.name for i in session.get_inputs()]
    unknown = [n for n in wanted if n not in arrays]
    if unknown:
        raise BackendError(f"the exported graph wants inputs {unknown} that the row does not have")
    return {n: arrays[n] for n in wanted}


def bound_run(ort: Any, session: Any, tensors: dict[str, torch.Tensor],
              device: tuple[str, int] = ("cpu", 0)) -> Callable[[], None]:
    """One call of `session` through an IOBinding whose inputs and outputs are allocated once, on
    `device` (("cuda", 0) for a GPU provider: no host copies timed), the outputs' shapes and types
    from one plain run. ORT's run returns once the device has finished (it synchronises)."""
    feeds = _named_feeds(session, tensors)
    try:
        first = session.run(None, feeds)
    except Exception as e:  # noqa: BLE001 - ORT raises its own exception types
        raise BackendError(f"onnxruntime cannot run the exported graph: {_first_line(e)}") from None
    binding = session.io_binding()
    keep = []  # the OrtValues must outlive the binding
    for name, array in feeds.items():
        value = ort.OrtValue.ortvalue_from_numpy(array, *device)
        keep.append(value)
        binding.bind_ortvalue_input(name, value)
    for meta, array in zip(session.get_outputs(), first):
        value = ort.OrtValue.ortvalue_from_numpy(array.copy(), *device)
        keep.append(value)
        binding.bind_ortvalue_output(meta.name, value)

    def run() -> None:
        session.run_with_iobinding(binding)

    run.keep = keep  # type: ignore[attr-defined]
    return run


class _Rows(nn.Module):
    """Several rows side by side: row i takes its own slice of the positional inputs (a list for a
    multi-input row) and contributes its tensor leaves to the flat output tuple."""

    def __init__(self, modules: Sequence[nn.Module], counts: Sequence[tuple[bool, int]]) -> None:
        super().__init__()
        self.rows = nn.ModuleList(modules)
        self.counts = list(counts)

    def forward(self, *xs: torch.Tensor) -> tuple[torch.Tensor, ...]:
        out: list[torch.Tensor] = []
        at = 0
        for module, (multi, n) in zip(self.rows, self.counts):
            part = xs[at:at + n]
            at += n
            out += tensor_leaves(module(list(part) if multi else part[0]))
        return tuple(out)


def export_rows(rows: Sequence[tuple[nn.Module, Inputs]], *,
                opset: int = DEFAULT_OPSET) -> list[tuple[bytes, list[str]]] | None:
    """Each row's own ONNX graph and its input names, from one export of all of them; None when the
    joint export or a cut fails (the caller then exports row by row, for an error that names the row)."""
    import onnx
    import onnx.utils

    _check_exporter()
    counts, in_names, out_names, xs = [], [], [], []
    modules = []
    try:
        with torch.no_grad():
            for i, (module, inputs) in enumerate(rows):
                tensors = [t.detach().clone() for t in _tensors(inputs)]
                module = copy.deepcopy(module).eval()
                leaves = tensor_leaves(module(tensors if isinstance(inputs, (list, tuple)) else tensors[0]))
                if not leaves:
                    return None
                counts.append((isinstance(inputs, (list, tuple)), len(tensors)))
                in_names.append([f"r{i}_in{j}" for j in range(len(tensors))])
                out_names.append([f"r{i}_out{j}" for j in range(len(leaves))])
                xs += tensors
                modules.append(module)
        with _quiet_export():
            program = torch.onnx.export(_Rows(modules, counts).eval(), tuple(xs), dynamo=True, verbose=False,
                                        opset_version=opset, external_data=False,
                                        input_names=[n for names in in_names for n in names],
                                        output_names=[n for names in out_names for n in names])
        proto = program.model_proto
        present_in = {i.name for i in proto.graph.input}
        present_out = {o.name for o in proto.graph.output}
        extractor = onnx.utils.Extractor(proto)
        graphs = []
        for ins, outs in zip(in_names, out_names):
            if not set(outs) <= present_out:
                return None
            kept = [n for n in ins if n in present_in]
            graphs.append((extractor.extract_model(kept, outs).SerializeToString(), ins))
        return graphs
    except Exception:  # noqa: BLE001 - any failure: fall back to one export per row
        return None


def _tensors(inputs: Inputs) -> list[torch.Tensor]:
    return list(inputs) if isinstance(inputs, (list, tuple)) else [inputs]


def tensor_leaves(value: Any) -> list[torch.Tensor]:
    if isinstance(value, torch.Tensor):
        return [value]
    if isinstance(value, dict):
        value = list(value.values())
    if isinstance(value, (list, tuple)):
        return [t for v in value for t in tensor_leaves(v)]
    return []


@contextlib.contextmanager
def _quiet_export() -> Iterator[None]:
    """Silence the exporter's warnings and log lines (missing torchvision ops, deprecations): only the
    face prints, and they are not about the user's model."""
    loggers = [logging.getLogger(name) for name in ("torch.onnx", "onnxscript", "onnx_ir")]
    levels = [lg.level for lg in loggers]
    for lg in loggers:
        lg.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        for lg, level in zip(loggers, levels):
            lg.setLevel(level)


def _version(dist: str) -> str | None:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return None


def _first_line(e: BaseException) -> str:
    text = str(e).strip()
    return f"{type(e).__name__}: {text.splitlines()[0]}" if text else type(e).__name__
