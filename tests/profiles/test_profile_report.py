"""profile_model, the report formats and `zoo profile` through cli.main."""
from __future__ import annotations

import csv
import io
import json

import pytest

import cli
from profiles import profile_model
from profiles.latency import percentile, summarize
from profiles.formats import to_csv, to_json, to_markdown
from profiles.rows import layer_rows
from face import console
from face.render_profile import render
from zoo import ConfigError, build_model

MODEL_KEYS = {"params", "gmacs", "gflops", "latency_ms", "threads", "loadavg", "memory", "uncounted_ops", "layers",
              "lint"}
LAYER_KEYS = {"index", "from", "repeats", "module", "args", "params", "gmacs", "gflops", "out_shape", "stride",
              "latency_ms", "share", "uncounted"}
# A Bottleneck asked for its shortcut (the default) but reading 16 channels into 32: the add is dropped.
NO_SHORTCUT = {"nc": 1, "backbone": [[-1, 1, "Conv", [16, 3, 2]], [-1, 1, "Bottleneck", [32]]]}
SPPF_UNCOUNTED = "max_pool2d×3, silu×2"  # yolov5n row 9: three pools, cv1 and cv2 activations


@pytest.fixture(scope="module")
def n64():
    return profile_model("yolov5n", imgsz=64, latency=False)


def test_profile_rows_and_totals(n64) -> None:
    assert n64.params == 1_872_157
    assert len(n64.layers) == 25
    assert sum(lay.params for lay in n64.layers) == n64.params
    assert sum(lay.macs for lay in n64.layers) == n64.macs
    first, detect = n64.layers[0], n64.layers[-1]
    assert (first.module, first.args, first.out_shape, first.stride) == ("Conv", (3, 16, 6, 2, 2), (1, 16, 32, 32), 2.0)
    assert detect.module == "Detect" and detect.from_ == (17, 20, 23) and detect.out_shape is None
    assert [n64.layers[i].stride for i in (17, 20, 23)] == [8.0, 16.0, 32.0]
    assert n64.latency is None and all(lay.latency is None and lay.share is None for lay in n64.layers)
    assert n64.memory.param_bytes == 4 * n64.params
    assert n64.memory.peak_activation_bytes > 0
    assert n64.n_modules == 214  # YOLOv5 v7.0 prints "214 layers" (one shared SiLU)


def test_json_keys(n64) -> None:
    listed = json.loads(to_json([n64]))
    assert isinstance(listed, list) and len(listed) == 1  # one shape for one config or several
    data = listed[0]
    assert MODEL_KEYS <= set(data)
    assert set(data["memory"]) >= {"param_bytes", "peak_activation_bytes"}
    assert data["latency_ms"] is None and data["threads"] == 1
    assert data["uncounted_ops"]["aten::silu"] == 57
    assert all(LAYER_KEYS <= set(lay) for lay in data["layers"])
    assert data["gflops"] == pytest.approx(2 * data["gmacs"])
    assert [d["params"] for d in json.loads(to_json([n64, n64]))] == [n64.params, n64.params]


def test_csv_and_markdown(n64) -> None:
    rows = list(csv.DictReader(io.StringIO(to_csv([n64]))))
    assert len(rows) == 26 and rows[-1]["index"] == "total" and int(rows[-1]["params"]) == n64.params
    md = to_markdown([n64, n64])
    assert "Side by side" in md and "yolov5n summary: 214 layers, 1872157 parameters" in md
    assert "| 24 | [17,20,23] |" in md


def test_deploy_and_latency() -> None:
    p = profile_model("yolov5s", imgsz=64, deploy=True, latency=True, runs=3, warmup_s=0.0)
    assert p.deploy and p.params == 7_225_885
    assert p.latency is not None and p.latency.runs == 3 and p.threads == 1
    shares = [lay.share for lay in p.layers]
    assert all(s is not None for s in shares) and sum(shares) == pytest.approx(1.0)


def test_given_model_not_mutated_by_deploy() -> None:
    model = build_model("yolov5n")
    profile_model(model, imgsz=64, deploy=True, latency=False)
    assert sum(p.numel() for p in model.parameters()) == 1_872_157


def test_bad_imgsz_is_config_error() -> None:
    with pytest.raises(ConfigError, match="multiple of the model's max stride 32"):
        profile_model("yolov5n", imgsz=100, latency=False)


def test_latency_stats_math() -> None:
    xs = [float(v) for v in range(1, 11)]
    assert percentile(xs, 50) == pytest.approx(5.5)
    assert percentile(xs, 90) == pytest.approx(9.1)
    assert percentile([4.0], 90) == 4.0
    s = summarize([2.0, 4.0, 4.0, 4.0, 5.0, 5.0, 7.0, 9.0], warmup_runs=1, threads=1, device="cpu")
    assert s.mean_ms == 5.0 and s.median_ms == 4.5
    assert s.cv == pytest.approx(2.0 / 5.0)  # population sd 2
    assert s.as_dict() == {"median": 4.5, "p90": pytest.approx(7.6), "cv": 0.4}


def test_cli_json_stdout_only(capsys) -> None:
    assert cli.main(["profile", "yolov5n", "--format", "json", "--no-latency", "--imgsz", "320"]) == 0
    out = capsys.readouterr().out
    [data] = json.loads(out)
    assert data["params"] == 1_872_157 and data["imgsz"] == 320 and data["latency_ms"] is None
    assert data["lint"] == []


def test_cli_out_file_and_side_by_side(tmp_path, capsys) -> None:
    path = tmp_path / "p.json"
    args = ["profile", "yolov5n", "yolov5n", "--deploy", "--format", "json", "--no-latency", "--imgsz", "64",
            "--no-cross-check", "--out", str(path)]
    assert cli.main(args) == 0
    assert capsys.readouterr().out == ""
    data = json.loads(path.read_text())
    assert isinstance(data, list) and len(data) == 2 and all(d["deploy"] for d in data)
    table = tmp_path / "p.txt"
    assert cli.main(["profile", "yolov5n", "--no-latency", "--imgsz", "64", "--no-cross-check",
                     "--out", str(table)]) == 0
    assert "yolov5n summary: 214 layers, 1872157 parameters" in table.read_text()


def test_cli_bad_imgsz_one_line(capsys) -> None:
    assert cli.main(["profile", "yolov5n", "--imgsz", "300", "--no-latency"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("error: yolov5n: --imgsz 300") and "Traceback" not in "".join(err)


def test_listings(capsys) -> None:
    assert cli.main(["configs", "--format", "json"]) == 0
    names = {d["name"] for d in json.loads(capsys.readouterr().out)}
    assert {"yolov5n", "yolov5s-seg"} <= names
    assert cli.main(["modules", "--format", "json", "--family", "yolov5"]) == 0
    mods = {d["name"]: d for d in json.loads(capsys.readouterr().out)}
    assert mods["C3"]["family"] == "yolov5" and "c1" in mods["C3"]["signature"]
    assert cli.main(["validate", "yolov5s"]) == 0
    assert "25 rows, 7,235,389 params, strides 8/16/32" in capsys.readouterr().out


def test_uncounted_ops_per_row_in_every_table(n64, tmp_path) -> None:
    head, rows = layer_rows(n64)
    col = head.index("uncounted")
    assert rows[9][col] == SPPF_UNCOUNTED
    assert rows[0][col] == "silu×1" and rows[12][col] == "-"  # Concat moves data only
    md = to_markdown([n64])
    assert f"| {SPPF_UNCOUNTED} |" in md and "| uncounted |" in md
    csv_rows = list(csv.DictReader(io.StringIO(to_csv([n64]))))
    assert csv_rows[9]["uncounted"] == SPPF_UNCOUNTED and csv_rows[12]["uncounted"] == ""
    assert csv_rows[-1]["uncounted"].startswith("silu×57")
    assert json.loads(to_json([n64]))[0]["layers"][9]["uncounted"] == SPPF_UNCOUNTED
    out = tmp_path / "table.txt"
    render([n64], "table", out)
    line9 = next(ln for ln in out.read_text(encoding="utf-8").splitlines() if ln.strip().startswith("9 "))
    assert "SPPF" in line9 and SPPF_UNCOUNTED in line9


def test_lint_kept_in_profile_and_printed_to_stderr_in_table_mode(capsys) -> None:
    p = profile_model(NO_SHORTCUT, imgsz=64, latency=False)
    assert [(w.row, w.code) for w in p.lint] == [(1, "shortcut-disabled")]
    render([p], "table")
    cap = capsys.readouterr()
    assert "residual shortcut disabled" not in cap.out and "Bottleneck" in cap.out
    warning = [ln for ln in cap.err.splitlines() if ln.startswith("warning:")]
    assert len(warning) == 1 and "row 1: Bottleneck: residual shortcut disabled" in warning[0]
    assert "shortcut disabled" in to_markdown([p])


def test_lint_in_cli_json(capsys) -> None:
    """The EfficientNetV2 config halves six times: its Detect reads strides 16/32/64, not 8/16/32."""
    assert cli.main(["profile", "yolov5s-effnetv2", "--no-latency", "--imgsz", "320", "--format", "json"]) == 0
    cap = capsys.readouterr()
    [data] = json.loads(cap.out)  # stdout is only the JSON
    assert [(w["row"], w["code"]) for w in data["lint"]] == [(27, "anchor-strides")]
    assert "strides 16/32/64" in data["lint"][0]["text"] and "8/16/32" in data["lint"][0]["text"]
    assert "warning: yolov5s-effnetv2: row 27: Detect reads levels at strides 16/32/64" in cap.err


def test_no_lint_for_yolov5n(n64, capsys) -> None:
    assert n64.lint == ()
    assert json.loads(to_json([n64]))[0]["lint"] == []
    render([n64], "json")
    assert "warning" not in capsys.readouterr().err


def test_print_error_one_line_on_stderr(capsys) -> None:
    console.error("bad.yaml: row 3: unknown module 'Foo'\n  (see `zoo modules`)")
    cap = capsys.readouterr()
    assert cap.out == ""
    assert cap.err == "error: bad.yaml: row 3: unknown module 'Foo' (see `zoo modules`)\n"


def test_layers_means_modules_in_profile(n64) -> None:
    """YOLOv5's summary line keeps its wording ("214 layers" counts modules); the totals say what it counts."""
    assert n64.summary == "yolov5n summary: 214 layers, 1872157 parameters, 0.05 GFLOPs"
    from profiles.rows import totals_text

    assert totals_text(n64)[0].endswith('; 1,872,157 params; 214 modules (YOLOv5\'s "layers") in 25 rows')
    assert json.loads(to_json([n64]))[0]["modules"] == 214


def test_layers_means_deploy_convs_in_search(capsys) -> None:
    from types import SimpleNamespace

    from search import Budget
    from face.render_search import print_result
    from face.search import budget_text

    assert budget_text(Budget(None, None, None, 12)) == "12 convs (deploy)"
    print_result(SimpleNamespace(study_name="s", n_trials=0, n_feasible=0, n_failed=0, interrupted=False,
                                 base=None, remeasured=[], best=None, files=[]))
    header = capsys.readouterr().out
    assert "convs (deploy)" in header and " layers " not in header
