"""YOLOBench names as zoo configs (bench/yolobench.py): the README's rule, the layouts, the row checks."""
from __future__ import annotations

import pytest

import zoo


@pytest.fixture(scope="module")
def yb(shared_dir, bench_script):
    return bench_script("yolobench")


def shapes(model, rows: int | None = None) -> dict[str, tuple[int, ...]]:
    return {k: tuple(v.shape) for k, v in model.state_dict().items()
            if rows is None or int(k.split(".")[1]) < rows}


@pytest.mark.parametrize("name, depth, width, cap", [
    ("yolo5n", 0.33, 0.25, 1024), ("yolo5l", 1.0, 1.0, 1024), ("yolo3d67w5", 0.67, 0.5, 1024),
    ("yolo8n", 0.33, 0.25, 1024), ("yolo8d33w75", 0.33, 0.75, 1024), ("yolo8m", 0.67, 0.75, 768),
    ("yolo8d67w25", 0.67, 0.25, 768), ("yolo8l", 1.0, 1.0, 512), ("yolo8d1w5", 1.0, 0.5, 512)])
def test_names_follow_the_readme(yb, name: str, depth: float, width: float, cap: int) -> None:
    v = yb.parse_name(name)
    assert (v.depth, v.width, v.max_channels) == (depth, width, cap)


@pytest.mark.parametrize("name", ["yolo4n", "yolo6l-d1w25", "yolo7s", "yolo5x", "yolo8d2w5"])
def test_names_without_a_layout_are_refused(yb, name: str) -> None:
    with pytest.raises(ValueError, match="no layout"):
        yb.parse_name(name)


def test_expected_rows_by_hand(yb) -> None:
    rows = yb.expected_rows(yb.parse_name("yolo8d1w25"))
    assert (rows[8].module, rows[8].repeats, rows[8].out_channels) == ("C2f", 3, 128)  # min(1024, 512) * 0.25
    assert (rows[11].module, rows[11].out_channels) == ("Concat", 128 + 128)  # upsampled row 9 + row 6
    n = yb.expected_rows(yb.parse_name("yolo5n"))
    assert (n[4].repeats, n[4].out_channels, n[6].repeats) == (2, 64, 3)  # round(6 * .33), 256 * .25, round(9 * .33)
    assert (n[24].module, n[24].out_channels) == ("Detect", None)


@pytest.mark.parametrize("name, rows", [("yolo5n", 25), ("yolo8n", 23), ("yolo3n", 29)])
def test_each_layout_builds_and_passes_the_row_check(yb, name: str, rows: int) -> None:
    v = yb.parse_name(name)
    model = yb.build(v)
    assert yb.check_rows(v, model) == rows
    assert type(model.model[-1]).__module__ == "zoo.modules.ultralytics"


def test_yolo8_mapping_is_zoos_yolov8_and_yolo5_keeps_yolov5s_rows(yb) -> None:
    y8 = yb.build(yb.parse_name("yolo8n"))
    ref = zoo.build_model("yolov8n")
    assert shapes(y8) == shapes(ref)
    assert sum(p.numel() for p in y8.parameters()) == 3157200  # Ultralytics' YOLOv8n summary
    y5 = yb.build(yb.parse_name("yolo5n"))
    assert shapes(y5, 24) == shapes(zoo.build_model("yolov5n"), 24)  # backbone and neck: YOLOv5 v6.0's rows
    head = shapes(y5)  # the YOLOv8 head on P3 (64 channels): box branch max(16, 64 // 4, 64), class max(64, 80)
    assert (head["model.24.cv2.0.0.conv.weight"], head["model.24.cv3.0.0.conv.weight"]) == ((64, 64, 3, 3),
                                                                                          (80, 64, 3, 3))
    assert head["model.24.dfl.conv.weight"] == (1, 16, 1, 1)


def test_a_wrong_channel_cap_fails_the_row_check(yb) -> None:
    good = yb.parse_name("yolo8d1w25")
    wrong = yb.Variant(good.name, good.version, good.scale, good.depth, good.width, 1024)
    with pytest.raises(AssertionError, match="row 7 .*256 channels, README rule gives 128"):
        yb.check_rows(good, yb.build(wrong))


def test_yolo3_bottlenecks_are_yolov5s(yb) -> None:
    v = yb.parse_name("yolo3n")
    yb.check_yolo3_bottlenecks(v, yb.build(v))
    mapping = yb.config_mapping(v)
    for section in ("backbone", "head"):  # Ultralytics' default Bottleneck kernels (3, 3) are another block
        mapping[section] = [[f, n, m, a[:2]] if m == "Bottleneck" else [f, n, m, a] for f, n, m, a in mapping[section]]
    with pytest.raises(AssertionError, match="differ from YOLOv5's Bottleneck"):
        yb.check_yolo3_bottlenecks(v, zoo.build_model(mapping, scale=v.scale))


def test_records_and_the_mapped_models(yb) -> None:
    records, devices = yb.load_records()
    assert len(records) == 572 and "openvino_latency" in devices and "raspi4_tflite_latency" in devices
    assert len(devices) == 6
    mapped, unmapped = yb.variants([r.model for r in records])
    assert [sum(v.version == f for v in mapped) for f in yb.LAYOUTS] == [4, 10, 11]
    assert len(unmapped) == 27 and "yolo6l-d1w25" in unmapped
    # every name left out is a version without a layout in the README; no yolo3/5/8 name is missed
    assert sorted({n[:5] for n in unmapped}) == ["yolo4", "yolo6", "yolo7"]
    assert [sum(n.startswith(f) for n in unmapped) for f in ("yolo4", "yolo6", "yolo7")] == [5, 18, 4]
    r = next(r for r in records if (r.model, r.imgsz) == ("yolo3d1w25", 160))
    assert r.map50_95 == pytest.approx(0.1560033080915649)
    assert r.latency_s["openvino_latency"] == pytest.approx(0.0025207630793253)


def test_missing_data_is_a_clear_error(yb, tmp_path) -> None:
    with pytest.raises(FileNotFoundError, match="COCO_pretrain_300epochs.csv not found"):
        yb.load_records(tmp_path)
