"""Latency backends: the eager torch protocol (threads, inference mode, warm-up, CUDA sync via a patch),
the ONNX Runtime backend (session settings, faithful exports of a conv net, ZooModel rows and heads with
tuple/dict outputs), and the per-row mapping back to YAML rows."""
from __future__ import annotations

import pytest
import torch
from torch import nn

from profiles import latency
from profiles.backends import BackendError, TorchBackend, get_backend, random_inputs
from profiles.latency import TimingProtocol
from zoo.plan import plan_config
from profiles.rowtiming import capture_row_inputs, time_rows
from zoo import build_model

QUICK = TimingProtocol(runs=3, warmup_runs=2, warmup_s=0.0)
# Every row differs from every other one in module, arguments or input shapes.
DISTINCT = {"family": "ultralytics", "nc": 3, "backbone": [
    [-1, 1, "Conv", [16, 3, 2]],              # 0: 3 -> 16, /2
    [-1, 1, "Conv", [32, 3, 2]],              # 1: 16 -> 32, /4
    [-1, 1, "C2f", [32, True]],               # 2
    [-1, 1, "Conv", [64, 3, 2]],              # 3: /8
    [-1, 1, "SPPF", [64, 5]],                 # 4
], "head": [
    [-1, 1, "nn.Upsample", [None, 2, "nearest"]],  # 5: /4
    [[-1, 2], 1, "Concat", [1]],                   # 6: 64 + 32
    [-1, 1, "C2f", [32, False]],                   # 7
    [[7, 4], 1, "Detect", ["nc"]],                 # 8: (predictions, raw dict of lists)
]}


class Probe(nn.Module):
    """A conv that records, on each call, the thread count, inference mode and its own dtype/device."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 8, 3, padding=1)
        self.calls: list[tuple[int, bool]] = []

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.calls.append((torch.get_num_threads(), torch.is_inference_mode_enabled()))
        return self.conv(x)


def small_net() -> nn.Module:
    return nn.Sequential(nn.Conv2d(3, 8, 3, 2, 1), nn.BatchNorm2d(8), nn.SiLU(), nn.Conv2d(8, 4, 1)).eval()


# ---- the protocol and the torch backend ------------------------------------------------------------------
def test_protocol_rejects_bad_settings() -> None:
    with pytest.raises(ValueError, match="runs"):
        TimingProtocol(runs=0)
    with pytest.raises(ValueError, match="warmup"):
        TimingProtocol(warmup_s=-1)


def test_torch_backend_runs_the_protocol() -> None:
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        probe = Probe()
        stats = TorchBackend(threads=1).time_row(probe, torch.randn(1, 3, 8, 8), QUICK)
        assert torch.get_num_threads() == 2  # restored after
    finally:
        torch.set_num_threads(before)
    # warm-up by count (warmup_s=0 stops it there), then the timed runs; pinned to 1 thread, inference mode
    assert probe.calls == [(1, True)] * (QUICK.warmup_runs + QUICK.runs)
    assert (stats.runs, stats.warmup_runs, stats.threads, stats.device) == (3, 2, 1, "cpu")
    assert 0 < stats.median_ms <= stats.p90_ms


def test_torch_backend_model_and_dtype() -> None:
    probe = Probe()
    stats = TorchBackend(dtype=torch.float64).time_model(probe, (1, 3, 8, 8), QUICK)
    assert stats.runs == 3 and probe.conv.weight.dtype == torch.float64
    info = TorchBackend(threads=3, dtype=torch.float64).fingerprint()
    assert (info.name, info.version, info.device, info.dtype, info.threads) == (
        "torch", torch.__version__, "cpu", "float64", 3)


def test_time_callable_synchronises_cuda_around_every_timed_call(monkeypatch) -> None:
    events: list[str] = []
    monkeypatch.setattr(torch.cuda, "synchronize", lambda device=None: events.append("sync"))
    samples, warm = latency.time_callable(lambda: events.append("call"), device=torch.device("cuda"),
                                          runs=3, warmup_runs=2, warmup_s=0.0)
    assert (len(samples), warm) == (3, 2)
    assert events == ["call", "sync"] * 2 + ["sync", "call", "sync"] * 3


def test_torch_backend_on_cuda_takes_the_sync_path(monkeypatch) -> None:
    """The CUDA path on a CPU-only machine: placement and the device name patched, the syncs counted."""
    syncs: list[object] = []
    monkeypatch.setattr(torch.cuda, "synchronize", lambda device=None: syncs.append(device))
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda device=None: "Fake GPU")
    monkeypatch.setattr(latency, "_to", lambda value, device, dtype: value)
    monkeypatch.setattr(nn.Module, "to", lambda self, *a, **k: self)
    backend = TorchBackend(device="cuda")
    stats = backend.time_row(Probe(), torch.randn(1, 3, 8, 8), QUICK)
    assert stats.device == "cuda"
    assert len(syncs) == QUICK.warmup_runs + 2 * QUICK.runs
    assert all(d == torch.device("cuda") for d in syncs)
    assert backend.fingerprint().settings_dict()["gpu_model"] == "Fake GPU"


def test_get_backend_errors_name_the_parameter() -> None:
    with pytest.raises(ValueError, match="backend='tensorrt'"):
        get_backend("tensorrt")
    with pytest.raises(ValueError, match="threads="):
        get_backend("torch", threads=0)
    with pytest.raises(ValueError, match="device='mps'"):
        get_backend("torch", device="mps")


def test_random_inputs_shapes() -> None:
    assert random_inputs((1, 3, 4, 4)).shape == (1, 3, 4, 4)
    pair = random_inputs([(1, 2, 4, 4), (1, 5, 2, 2)])
    assert isinstance(pair, list) and [t.shape[1] for t in pair] == [2, 5]
    with pytest.raises(ValueError, match="shape="):
        random_inputs([(1, 0, 4, 4)])


# ---- per-row timing: each YAML row, alone, at its real inputs ----------------------------------------
class Spy:
    """A backend that records what it is asked to time and delegates to a real one."""

    def __init__(self, inner) -> None:
        self.inner, self.name, self.threads = inner, inner.name, inner.threads
        self.asked: list[tuple[nn.Module, tuple[tuple[int, ...], ...]]] = []

    def fingerprint(self):
        return self.inner.fingerprint()

    def time_model(self, model, shape, protocol=TimingProtocol()):
        return self.inner.time_model(model, shape, protocol)

    def time_row(self, module, inputs, protocol=TimingProtocol()):
        tensors = inputs if isinstance(inputs, list) else [inputs]
        self.asked.append((module, tuple(tuple(t.shape) for t in tensors)))
        return self.inner.time_row(module, inputs, protocol)


def expected_input_shapes(model, imgsz: int) -> dict[int, tuple[tuple[int, ...], ...]]:
    """Each row's input shapes from the row plan at `imgsz` (batch 1)."""
    plan = plan_config(model.config, imgsz=imgsz)
    return {rp.index: tuple((1, s.channels, s.height, s.width) for s in rp.inputs) for rp in plan.rows}


def rows_of(backend_name: str):
    if backend_name == "onnxruntime":
        pytest.importorskip("onnxruntime")
        pytest.importorskip("onnxscript")
    return get_backend(backend_name)


@pytest.mark.parametrize("backend_name", ["torch", "onnxruntime"])
def test_time_rows_maps_every_row_to_its_yaml_row(backend_name: str) -> None:
    model = build_model(DISTINCT)
    spy = Spy(rows_of(backend_name))
    timings = time_rows(spy, model, imgsz=64, protocol=QUICK)
    expected = expected_input_shapes(model, 64)
    assert [t.index for t in timings] == list(range(len(DISTINCT["backbone"]) + len(DISTINCT["head"])))
    assert [t.module for t in timings] == [r[2] for r in DISTINCT["backbone"] + DISTINCT["head"]]
    assert len({(i.module, repr(i.args), expected[i.index]) for i in model.layers}) == len(model.layers)
    for t, (module, shapes), info in zip(timings, spy.asked, model.layers):
        assert module is model.model[info.index]  # row i's own module was timed for row i
        assert t.input_shapes == shapes == expected[info.index]
        assert t.latency.runs == QUICK.runs and t.latency.median_ms > 0


def test_time_rows_error_names_the_row() -> None:
    class Refuses:
        name, threads = "refuses", 1

        def fingerprint(self):
            raise AssertionError

        def time_model(self, model, shape, protocol=TimingProtocol()):
            raise AssertionError

        def time_row(self, module, inputs, protocol=TimingProtocol()):
            if isinstance(inputs, list):
                raise BackendError("cannot export this head")
            return TorchBackend().time_row(module, inputs, protocol)

    with pytest.raises(BackendError, match=r"row 6 \(Concat\): cannot export this head"):
        time_rows(Refuses(), build_model(DISTINCT), imgsz=64, protocol=QUICK)


# ---- ONNX Runtime ---------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def ort_backend():
    pytest.importorskip("onnxruntime")
    pytest.importorskip("onnxscript")
    return get_backend("onnxruntime", threads=1)


def ort_outputs(backend, module, inputs):
    from profiles.backends.onnxrt import export_onnx, feeds_for

    session = backend.session(export_onnx(module, inputs))
    return session, [torch.from_numpy(o) for o in session.run(None, feeds_for(session, inputs))]


def eager_leaves(module, inputs):
    from profiles.backends.onnxrt import tensor_leaves

    with torch.no_grad():
        return tensor_leaves(module(inputs))


def test_ort_session_settings(ort_backend) -> None:
    net = small_net()
    session, _ = ort_outputs(ort_backend, net, torch.randn(1, 3, 16, 16))
    so = session.get_session_options()
    ort = ort_backend.ort
    assert (so.intra_op_num_threads, so.inter_op_num_threads) == (1, 1)
    assert so.execution_mode == ort.ExecutionMode.ORT_SEQUENTIAL
    assert so.graph_optimization_level == ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    assert so.get_session_config_entry("session.intra_op.allow_spinning") == "0"
    assert so.get_session_config_entry("session.inter_op.allow_spinning") == "0"
    basic = get_backend("onnxruntime", threads=2, optimization="ORT_ENABLE_BASIC")
    so2 = basic.session(ort_backend_export(net)).get_session_options()
    assert so2.intra_op_num_threads == 2
    assert so2.graph_optimization_level == ort.GraphOptimizationLevel.ORT_ENABLE_BASIC
    s = basic.fingerprint().settings_dict()
    assert s["graph_optimization_level"] == "ORT_ENABLE_BASIC" and s["providers"] == ("CPUExecutionProvider",)
    assert (s["inter_op_num_threads"], s["allow_spinning"], s["opset"]) == (1, False, 20)


def ort_backend_export(module):
    from profiles.backends.onnxrt import export_onnx

    return export_onnx(module, torch.randn(1, 3, 16, 16))


def test_ort_times_a_small_conv_net(ort_backend) -> None:
    net, x = small_net(), torch.randn(1, 3, 32, 32)
    _, (y,) = ort_outputs(ort_backend, net, x)
    torch.testing.assert_close(y, net(x).detach(), atol=1e-4, rtol=1e-4)
    stats = ort_backend.time_model(net, (1, 3, 32, 32), QUICK)
    assert (stats.runs, stats.warmup_runs, stats.threads, stats.device) == (3, 2, 1, "cpu")
    assert 0 < stats.median_ms <= stats.p90_ms


def test_ort_rows_of_a_zoo_model_match_eager(ort_backend) -> None:
    """A C2f row and the Detect head (a list in, a (tensor, dict of lists) out) export faithfully."""
    model = build_model(DISTINCT).eval()
    inputs = capture_row_inputs(model, torch.randn(1, 3, 64, 64))
    for index in (2, 8):
        module, inp = model.model[index], inputs[index]
        _, got = ort_outputs(ort_backend, module, inp)
        want = eager_leaves(module, inp)
        assert [tuple(g.shape) for g in got] == [tuple(w.shape) for w in want]
        for g, w in zip(got, want):
            torch.testing.assert_close(g, w, atol=1e-4, rtol=1e-4)
    assert len(eager_leaves(model.model[8], inputs[8])) == 1 + 2 + 2  # predictions, boxes, scores, 2 maps
    assert ort_backend.time_row(model.model[8], inputs[8], QUICK).runs == QUICK.runs


def test_ort_whole_zoo_model_matches_eager(ort_backend) -> None:
    model = build_model(DISTINCT).eval()
    x = torch.randn(1, 3, 64, 64)
    _, got = ort_outputs(ort_backend, model, x)
    want = eager_leaves(model, x)
    assert len(got) == len(want) == 5
    for g, w in zip(got, want):
        torch.testing.assert_close(g, w, atol=1e-4, rtol=1e-4)


def test_ort_exports_the_rtdetr_decoder(ort_backend) -> None:
    """RT-DETR's decoder (top-k query selection, a tuple of tensors and lists out) exports; its outputs keep
    their shapes (values may part where random scores nearly tie in the top-k)."""
    from zoo.modules.rtdetr import RTDETRDecoder

    dec = RTDETRDecoder(5, (32, 64), hd=32, nq=20).eval()
    feats = [torch.randn(1, 32, 8, 8), torch.randn(1, 64, 4, 4)]
    _, got = ort_outputs(ort_backend, dec, feats)
    want = eager_leaves(dec, feats)
    assert [tuple(g.shape) for g in got] == [tuple(w.shape) for w in want]
    assert tuple(got[0].shape) == (1, 20, 6)


def test_ort_export_errors_are_one_line(ort_backend) -> None:
    class Nothing(nn.Module):
        def forward(self, x):
            return None

    class Untraceable(nn.Module):
        def forward(self, x):
            if torch.compiler.is_exporting():
                raise RuntimeError("this op has no ONNX form")
            return x

    with pytest.raises(BackendError, match="cannot export Nothing to ONNX: it returns no tensor"):
        ort_backend.time_row(Nothing(), torch.randn(1, 3, 4, 4), QUICK)
    with pytest.raises(BackendError, match="cannot export Untraceable to ONNX") as e:
        ort_backend.time_row(Untraceable(), torch.randn(1, 3, 4, 4), QUICK)
    assert "\n" not in str(e.value)


def test_ort_backend_refuses_what_it_cannot_time(ort_backend) -> None:
    with pytest.raises(ValueError, match="optimization='FAST'"):
        get_backend("onnxruntime", optimization="FAST")
    with pytest.raises(ValueError, match="dtype="):
        get_backend("onnxruntime", dtype=torch.float16)
    with pytest.raises(ValueError, match="providers="):
        get_backend("onnxruntime", providers=["NoSuchExecutionProvider"])


def test_missing_onnx_extra_is_a_one_line_hint(monkeypatch) -> None:
    import sys

    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # import onnxruntime now raises ImportError
    with pytest.raises(BackendError, match=r"needs onnxruntime; install the onnx extra: pip install 'zoo-nas\[onnx\]'"):
        get_backend("onnxruntime")


def test_backend_of_a_fingerprint_keeps_its_settings_under_the_flags(ort_backend) -> None:
    """A table's backend, again: its recorded ORT settings stay when the flags change threads; another
    backend named by a flag takes none of them (they are ORT's)."""
    from profiles.backends import backend_of
    from profiles.fingerprint import device_fingerprint

    fp = device_fingerprint(get_backend("onnxruntime", threads=2, optimization="ORT_ENABLE_BASIC",
                                        exporter="torchscript"))
    again = backend_of(fp)
    assert device_fingerprint(again) == fp
    flagged = backend_of(fp, threads=1)
    s = flagged.fingerprint().settings_dict()
    assert flagged.threads == 1 and s["graph_optimization_level"] == "ORT_ENABLE_BASIC"
    assert flagged.exporter == "torchscript"
    torch_here = backend_of(fp, backend="torch", device="cpu")
    assert isinstance(torch_here, TorchBackend) and torch_here.threads == 2
    with pytest.raises(ValueError, match="threads"):
        backend_of(fp, threads=0)
