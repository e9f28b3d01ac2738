#!/usr/bin/env python3
"""Time the ONNX files of a `zoo lut export` folder on this device; needs Python 3.8+, numpy and onnxruntime only.

    python run_lut.py                      # every item of ./manifest.json, CPU provider, 1 thread
    python run_lut.py --provider cuda      # ONNX Runtime's CUDA provider (tensorrt, or a full EP name)
    taskset -c 2 python run_lut.py         # pin the process to one core as well (Linux)

Then, on a machine with zoo: `zoo lut import DIR/measurements.jsonl -o device.lut`.

Each item of the manifest (a row or a whole model) gets one ONNX Runtime session with pinned threads
(intra-op --threads, inter-op 1, sequential, spinning off), inputs and outputs bound once (IOBinding),
a warm-up by count and by time, then N timed runs; one JSON line per item goes to measurements.jsonl
(median, p90, mean, min, max, cv and the raw samples). A rerun skips the items the file already holds
(resumable), after checking that it was measured under the same device record. The manifest and the
JSONL formats are described in lut-manifest.md beside this script; this program is shipped by zoo as
data and imports nothing of it.
"""
import argparse
import hashlib
import json
import os
import platform
import statistics
import sys
import time

RUNNER_VERSION = 1
MANIFEST_FORMAT = "zoo-lut-export"
MANIFEST_VERSION = 1
MEASUREMENTS_FORMAT = "zoo-lut-measurements"
MAX_MANIFEST_BYTES = 64 << 20  # the same bounds as zoo/limits.py (MAX_LUT_MANIFEST_BYTES, ...)
MAX_INPUT_ELEMENTS = 1 << 28  # elements of one input tensor (1 GiB of float32)
MAX_RUNS = 100_000
CUDA_LIKE = ("CUDAExecutionProvider", "TensorrtExecutionProvider")
GPU_PROVIDER_HINT = "install onnxruntime-gpu (CUDA, TensorRT) or the provider's own build of onnxruntime"


class RunnerError(Exception):
    """One line for the user: which file, which line, what is wrong."""


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--dir", default=os.path.dirname(os.path.abspath(__file__)),
                   help="the export folder (default: this script's)")
    p.add_argument("--out", default=None, help="measurements file (default DIR/measurements.jsonl)")
    p.add_argument("--provider", default="cpu",
                   help="ONNX Runtime execution provider: cpu, cuda, tensorrt, or a full name (CPUExecutionProvider)")
    p.add_argument("--provider-option", action="append", default=[], metavar="KEY=VALUE",
                   help="an option of the provider, repeatable (TensorRT: trt_fp16_enable=True); recorded")
    p.add_argument("--threads", type=int, default=1, help="intra-op threads (default 1)")
    p.add_argument("--optimization", default="ORT_ENABLE_ALL", help="graph optimisation level (default ORT_ENABLE_ALL)")
    p.add_argument("--runs", type=int, default=None, help="timed runs per row (default: the manifest's)")
    p.add_argument("--model-runs", type=int, default=None, help="timed runs per whole model (default: the manifest's)")
    p.add_argument("--limit", type=int, default=None, help="time at most this many items, then stop (resume later)")
    args = p.parse_args(argv)
    try:
        run(args)
    except RunnerError as e:
        sys.stderr.write(f"error: {e}\n")
        return 1
    except KeyboardInterrupt:
        sys.stderr.write("interrupted: run the same command again to resume\n")
        return 130
    return 0


def run(args):
    ort = _import_ort()
    manifest_path = os.path.join(args.dir, "manifest.json")
    manifest = read_manifest(manifest_path)
    providers = pick_providers(ort, args.provider)
    options = {}
    for text in args.provider_option:
        key, sep, value = text.partition("=")
        if not sep or not key:
            raise RunnerError(f"--provider-option {text!r}: write KEY=VALUE")
        options[key] = value
    if args.threads < 1 or args.threads > 1024:
        raise RunnerError(f"--threads {args.threads}: must be 1 to 1024")
    if not hasattr(ort.GraphOptimizationLevel, args.optimization):
        raise RunnerError(f"--optimization {args.optimization}: not an ORT GraphOptimizationLevel")
    rows = dict(manifest["protocol"])
    models = dict(manifest["model_protocol"])
    for proto, given, flag in ((rows, args.runs, "--runs"), (models, args.model_runs, "--model-runs")):
        if given is not None:
            if not 1 <= given <= MAX_RUNS:
                raise RunnerError(f"{flag} {given}: must be 1 to {MAX_RUNS}")
            proto["runs"] = given
    device = device_record(ort, providers, args.threads, args.optimization, manifest, rows, models)
    if options:
        device["fingerprint"]["provider_options"] = options
    out = args.out or os.path.join(args.dir, "measurements.jsonl")
    done = resume(out, device)
    todo = [it for it in manifest["items"] if it["id"] not in done]
    sys.stderr.write(f"{len(done)} of {len(manifest['items'])} items already measured in {out}; "
                     f"{len(todo)} to go on {', '.join(providers)}, {args.threads} thread(s)\n")
    if not _pinned():
        sys.stderr.write("note: the process may run on any core; `taskset -c N python run_lut.py` pins it\n")
    if not done:
        append(out, device)
    warmed = False
    for n, item in enumerate(todo[:args.limit] if args.limit is not None else todo, 1):
        proto = rows if item["kind"] == "row" else models
        try:
            session, run_once = prepare(ort, os.path.join(args.dir, item["file"]), item, providers, args.threads,
                                        args.optimization, options)
            if not warmed:  # the process's slow first seconds belong to no item
                _warm(run_once, 0, float(manifest.get("process_warmup_s", 0.0)), float(manifest.get("process_warmup_s", 0.0)))
                warmed = True
            record = measure(run_once, proto)
            record.update({"kind": "timing", "export_id": manifest["export_id"], "id": item["id"],
                           "file": item["file"]})
            del session
        except RunnerError:
            raise
        except Exception as e:  # noqa: BLE001 - ORT raises its own types; the item is recorded as failed
            text = str(e).strip().splitlines()
            record = {"kind": "error", "export_id": manifest["export_id"], "id": item["id"], "file": item["file"],
                      "error": f"{type(e).__name__}: {text[0] if text else ''}"}
        append(out, record)
        shown = f"{record['median_ms']:.4f} ms" if record["kind"] == "timing" else record["error"]
        sys.stderr.write(f"[{n}/{len(todo)}] {item['kind']} {item['id']}: {shown}\n")


def _import_ort():
    try:
        import numpy  # noqa: F401
        import onnxruntime
    except ImportError as e:
        raise RunnerError(f"this runner needs numpy and onnxruntime: pip install numpy onnxruntime ({e})")
    return onnxruntime


def read_manifest(path):
    """The manifest, checked: format, version, every item's fields, files inside the folder, sizes bounded."""
    try:
        size = os.path.getsize(path)
        if size > MAX_MANIFEST_BYTES:
            raise RunnerError(f"{path}: {size} bytes, over the {MAX_MANIFEST_BYTES} a manifest may have")
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
    except OSError as e:
        raise RunnerError(f"{path}: cannot read the manifest: {e.strerror or e}")
    except ValueError as e:
        raise RunnerError(f"{path}:{getattr(e, 'lineno', '?')}: not valid JSON ({getattr(e, 'msg', e)}); "
                          "a truncated copy? copy the export folder again")
    if not isinstance(data, dict) or data.get("format") != MANIFEST_FORMAT:
        raise RunnerError(f'{path}: not a zoo lut export manifest (no "format": "{MANIFEST_FORMAT}")')
    if data.get("version") != MANIFEST_VERSION:
        raise RunnerError(f"{path}: manifest version {data.get('version')!r}; this runner reads {MANIFEST_VERSION}")
    for k in ("export_id", "items", "protocol", "model_protocol"):
        if k not in data:
            raise RunnerError(f"{path}: the manifest lacks {k!r}")
    root = os.path.realpath(os.path.dirname(path))
    seen = set()
    for i, item in enumerate(data["items"] if isinstance(data["items"], list) else [None]):
        where = f"{path}: item {i}"
        if not isinstance(item, dict) or item.get("kind") not in ("row", "model") or not isinstance(item.get("id"), str) \
                or not isinstance(item.get("file"), str) or not isinstance(item.get("inputs"), list):
            raise RunnerError(f"{where}: needs kind (row or model), id, file and inputs")
        if item["id"] in seen:
            raise RunnerError(f"{where}: id {item['id']!r} twice")
        seen.add(item["id"])
        full = os.path.realpath(os.path.join(root, item["file"]))
        if not full.startswith(root + os.sep):
            raise RunnerError(f"{where}: file {item['file']!r} is outside the export folder")
        for spec in item["inputs"]:
            shape = spec.get("shape") if isinstance(spec, dict) else None
            if not isinstance(spec, dict) or not isinstance(spec.get("name"), str) or not isinstance(shape, list) \
                    or not all(isinstance(d, int) and not isinstance(d, bool) and d > 0 for d in shape):
                raise RunnerError(f"{where}: each input needs a name and a shape of positive integers")
            elements = 1
            for d in shape:
                elements *= d
            if elements > MAX_INPUT_ELEMENTS:
                raise RunnerError(f"{where}: input {spec['name']} has {elements} elements, over {MAX_INPUT_ELEMENTS}")
    for k in ("protocol", "model_protocol"):
        proto = data[k]
        if not isinstance(proto, dict) or not all(isinstance(proto.get(f), (int, float)) and proto.get(f) >= 0
                                                  for f in ("runs", "warmup_runs", "warmup_s", "max_warmup_s")) \
                or not 1 <= proto["runs"] <= MAX_RUNS:
            raise RunnerError(f"{path}: {k} needs runs (1 to {MAX_RUNS}), warmup_runs, warmup_s, max_warmup_s >= 0")
    return data


def pick_providers(ort, asked):
    """The provider asked for (a short name matches a full name without `ExecutionProvider`, any case),
    then the CPU provider for what it cannot run; one line naming what is available when it is absent."""
    available = ort.get_available_providers()
    wanted = asked.lower().replace("executionprovider", "")
    match = [p for p in available if p.lower().replace("executionprovider", "") == wanted]
    if not match:
        raise RunnerError(f"--provider {asked}: not available in this onnxruntime {ort.__version__} "
                          f"(available: {', '.join(available)}); {GPU_PROVIDER_HINT}")
    return match + (["CPUExecutionProvider"] if match[0] != "CPUExecutionProvider" else [])


def device_record(ort, providers, threads, optimization, manifest, rows, models):
    """What the timings depend on: the machine, onnxruntime and its session settings, the protocols."""
    import numpy

    physical, logical = cpu_cores()
    return {"kind": "device", "format": MEASUREMENTS_FORMAT, "runner": RUNNER_VERSION,
            "export_id": manifest["export_id"], "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "fingerprint": {
                "cpu_model": cpu_model(), "physical_cores": physical, "logical_cores": logical,
                "machine": platform.machine(), "os": f"{platform.system()} {platform.release()}",
                "python": platform.python_version(), "numpy": numpy.__version__,
                "onnxruntime": ort.__version__, "providers": providers,
                "device": "cuda" if providers[0] in CUDA_LIKE else "cpu", "threads": threads,
                "inter_op_num_threads": 1, "execution_mode": "ORT_SEQUENTIAL", "allow_spinning": False,
                "graph_optimization_level": optimization, "io_binding": True},
            "protocol": rows, "model_protocol": models}


def cpu_model():
    try:
        with open("/proc/cpuinfo") as f:
            text = f.read()
    except OSError:
        text = ""
    for key in ("model name", "Hardware", "Model", "cpu model", "Processor"):
        for line in text.splitlines():
            name, sep, value = line.partition(":")
            if sep and name.strip() == key and value.strip():
                return value.strip()
    return platform.processor() or platform.machine() or "unknown"


def cpu_cores():
    logical = os.cpu_count()
    try:
        with open("/proc/cpuinfo") as f:
            text = f.read()
    except OSError:
        return None, logical
    pairs, phys, core = set(), None, None
    for line in text.splitlines() + [""]:
        name, _, value = (s.strip() for s in line.partition(":"))
        if name == "physical id":
            phys = value
        elif name == "core id":
            core = value
        elif not name:
            if core is not None:
                pairs.add((phys, core))
            phys = core = None
    return (len(pairs) or None), logical


def resume(out, device):
    """The ids `out` already holds; a torn last line (an interrupted write) is cut; a file measured under
    another device record or export is refused (use another --out)."""
    if not os.path.exists(out):
        return set()
    with open(out, "rb") as f:
        data = f.read()
    lines = data.split(b"\n")
    if data and not data.endswith(b"\n"):
        try:
            json.loads(lines[-1])
        except ValueError:
            with open(out, "r+b") as f:
                f.truncate(len(data) - len(lines[-1]))
            sys.stderr.write(f"note: {out}: dropped a torn last line (an interrupted run)\n")
            lines = lines[:-1]
    done = set()
    for n, raw in enumerate(lines, 1):
        if not raw.strip():
            continue
        try:
            rec = json.loads(raw)
        except ValueError as e:
            raise RunnerError(f"{out}:{n}: not valid JSON ({e}); move the file aside to start again")
        if not isinstance(rec, dict):
            raise RunnerError(f"{out}:{n}: not a JSON object")
        if rec.get("export_id") != device["export_id"]:
            raise RunnerError(f"{out}:{n}: from another export ({rec.get('export_id')!r}, the manifest's is "
                              f"{device['export_id']!r}); use another --out")
        if rec.get("kind") == "device":
            before = rec.get("fingerprint") if isinstance(rec.get("fingerprint"), dict) else {}
            diff = [k for k in sorted(set(before) | set(device["fingerprint"]))
                    if k not in ("started",) and before.get(k) != device["fingerprint"].get(k)]
            diff += [k for k in ("protocol", "model_protocol") if rec.get(k) != device[k]]
            if diff:
                raise RunnerError(f"{out}:{n}: measured under other settings ({', '.join(diff)} differ); "
                                  "use another --out, or the same settings to resume")
        elif rec.get("kind") == "timing":
            done.add(rec.get("id"))
        # errors are retried on resume
    return done


def append(out, record):
    """One line per record, flushed: an interruption loses at most the line being written."""
    with open(out, "a", encoding="utf-8") as f:
        f.write(json.dumps(record) + "\n")
        f.flush()
        os.fsync(f.fileno())


def prepare(ort, path, item, providers, threads, optimization, options=None):
    """A session with pinned threads and a run through an IOBinding whose inputs and outputs exist once."""
    import numpy as np

    so = ort.SessionOptions()
    so.intra_op_num_threads = threads
    so.inter_op_num_threads = 1
    so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    so.graph_optimization_level = getattr(ort.GraphOptimizationLevel, optimization)
    so.add_session_config_entry("session.intra_op.allow_spinning", "0")
    so.add_session_config_entry("session.inter_op.allow_spinning", "0")
    so.log_severity_level = 3
    provider_options = [dict(options or {})] + [{} for _ in providers[1:]]
    session = ort.InferenceSession(path, sess_options=so, providers=providers, provider_options=provider_options)
    seed = int(hashlib.sha1(item["id"].encode()).hexdigest()[:8], 16)
    rng = np.random.default_rng(seed)
    declared = {spec["name"]: spec["shape"] for spec in item["inputs"]}
    feeds = {}
    for meta in session.get_inputs():
        if meta.name not in declared:
            raise RunnerError(f"{path}: input {meta.name!r} is not in the manifest's item {item['id']}")
        feeds[meta.name] = rng.standard_normal(declared[meta.name]).astype(np.float32)
    first = session.run(None, feeds)
    on = "cuda" if providers[0] in CUDA_LIKE else "cpu"
    binding = session.io_binding()
    keep = []
    for name, array in feeds.items():
        value = ort.OrtValue.ortvalue_from_numpy(array, on, 0)
        keep.append(value)
        binding.bind_ortvalue_input(name, value)
    for meta, array in zip(session.get_outputs(), first):
        value = ort.OrtValue.ortvalue_from_numpy(np.ascontiguousarray(array), on, 0)
        keep.append(value)
        binding.bind_ortvalue_output(meta.name, value)

    def run_once():
        session.run_with_iobinding(binding)

    run_once.keep = keep
    return session, run_once


def _warm(fn, runs, seconds, cap):
    start, done = time.perf_counter(), 0
    while done < runs or (time.perf_counter() - start < seconds and time.perf_counter() - start < cap):
        fn()
        done += 1
    return done


def measure(fn, proto):
    """Warm-up (count and time, capped), then `runs` timed calls: the statistics and the raw samples."""
    warm = _warm(fn, int(proto["warmup_runs"]), float(proto["warmup_s"]), float(proto["max_warmup_s"]))
    samples = []
    for _ in range(int(proto["runs"])):
        t0 = time.perf_counter()
        fn()
        samples.append((time.perf_counter() - t0) * 1e3)
    xs = sorted(samples)
    mean = statistics.fmean(xs) if hasattr(statistics, "fmean") else sum(xs) / len(xs)
    sd = statistics.pstdev(xs) if len(xs) > 1 else 0.0
    pos = (len(xs) - 1) * 0.9
    lo = int(pos)
    hi = min(lo + 1, len(xs) - 1)
    p90 = xs[lo] + (xs[hi] - xs[lo]) * (pos - lo)
    return {"median_ms": statistics.median(xs), "p90_ms": p90, "mean_ms": mean, "min_ms": xs[0], "max_ms": xs[-1],
            "std_ms": sd, "cv": sd / mean if mean > 0 else 0.0, "runs": len(xs), "warmup_runs": warm,
            "samples_ms": samples}


def _pinned():
    try:
        return len(os.sched_getaffinity(0)) < (os.cpu_count() or 1)
    except AttributeError:
        return False


if __name__ == "__main__":
    sys.exit(main())
