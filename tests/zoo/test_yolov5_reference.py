"""The YOLOv5 family against YOLOv5 v7.0's own figures and configs."""
from __future__ import annotations

import pytest
import torch

import zoo

REFERENCE_PARAMS = {  # YOLOv5 v7.0 model summaries, nc 80
    "yolov5n": 1_872_157, "yolov5s": 7_235_389, "yolov5m": 21_190_557, "yolov5l": 46_563_709,
    "yolov5x": 86_749_405, "yolov5s-seg": 7_621_277,
}


def n_params(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


@pytest.mark.parametrize("name,expected", sorted(REFERENCE_PARAMS.items()))
def test_params_equal_yolov5_reference(name: str, expected: int) -> None:
    assert n_params(zoo.build_model(name, device="meta")) == expected


def test_deploy_params_yolov5s() -> None:
    # YOLOv5's fuse(): every Conv loses BN's 2c and gains a c-wide bias
    assert n_params(zoo.deploy(zoo.build_model("yolov5s"))) == 7_225_885


def test_state_dict_matches_yolov5_layout() -> None:
    sd = zoo.build_model("yolov5s").state_dict()
    keys = list(sd)
    assert len(keys) == 349
    assert keys[0] == "model.0.conv.weight"
    assert "model.24.anchors" in sd and tuple(sd["model.24.anchors"].shape) == (3, 3, 2)
    assert tuple(sd["model.0.conv.weight"].shape) == (32, 3, 6, 6)
    assert tuple(sd["model.2.m.0.cv1.conv.weight"].shape) == (32, 32, 1, 1)
    assert tuple(sd["model.24.m.0.weight"].shape) == (255, 128, 1, 1)
    assert tuple(sd["model.9.cv2.bn.running_var"].shape) == (512,)
    # anchors are stored in grid units (divided by the level's stride), as YOLOv5 saves them
    assert torch.allclose(sd["model.24.anchors"][0, 0], torch.tensor([10 / 8, 13 / 8]))


def test_state_dict_round_trip_loads_strictly() -> None:
    a, b = zoo.build_model("yolov5n"), zoo.build_model("yolov5n")
    b.load_state_dict(a.state_dict(), strict=True)
    x = torch.rand(1, 3, 64, 64)
    a.eval(), b.eval()
    with torch.no_grad():
        assert torch.equal(a(x)[0], b(x)[0])


REFERENCE_FILES = [f"{d}/{n}" for d, names in {
    "models": ["yolov5n", "yolov5s", "yolov5m", "yolov5l", "yolov5x"],
    "segment": ["yolov5n-seg", "yolov5s-seg", "yolov5m-seg", "yolov5l-seg", "yolov5x-seg"],
    "hub": ["yolov3-spp", "yolov3-tiny", "yolov3", "yolov5-bifpn", "yolov5-fpn", "yolov5-p2", "yolov5-p34",
            "yolov5-p6", "yolov5-p7", "yolov5-panet", "yolov5l6", "yolov5m6", "yolov5n6", "yolov5s-LeakyReLU",
            "yolov5s-ghost", "yolov5s-transformer", "yolov5s6", "yolov5x6"]}.items() for n in names]


def test_reference_list_is_complete(shared_dir) -> None:
    found = {f"{p.parent.name}/{p.stem}" for p in (shared_dir / "reference/yolov5").glob("*/*.yaml")}
    assert found == set(REFERENCE_FILES)


@pytest.mark.parametrize("rel", REFERENCE_FILES)
def test_yolov5_reference_config_builds_and_runs(shared_dir, rel: str) -> None:
    model = zoo.build_model(shared_dir / "reference/yolov5" / f"{rel}.yaml").eval()
    with torch.no_grad():
        out = model(torch.zeros(1, 3, 128, 128))
    det = out[0]
    assert det.dim() == 3 and det.shape[0] == 1
    assert det.shape[-1] == 85 + (32 if "seg" in rel else 0)


def test_reference_files_equal_builtins(shared_dir) -> None:
    """Our own yolov5 file with scales gives the same models as YOLOv5's per-scale files."""
    for s in "nsmlx":
        ref = zoo.build_model(shared_dir / "reference/yolov5/models" / f"yolov5{s}.yaml", device="meta")
        ours = zoo.build_model(f"yolov5{s}", device="meta")
        assert [tuple(v.shape) for v in ref.state_dict().values()] == \
            [tuple(v.shape) for v in ours.state_dict().values()]


def test_leaky_relu_activation_key(shared_dir) -> None:
    model = zoo.build_model(shared_dir / "reference/yolov5/hub/yolov5s-LeakyReLU.yaml")
    acts = {type(m.act).__name__ for m in model.modules() if type(m).__name__ == "Conv"}
    assert acts == {"LeakyReLU"}
    assert model.model[0].act.negative_slope == pytest.approx(0.1)
    # the default build is untouched by another config's activation (no class-level state)
    assert type(zoo.build_model("yolov5n").model[0].act).__name__ == "SiLU"


@pytest.mark.parametrize("name,levels", [("yolov5-p2", [4, 8, 16, 32]), ("yolov5-p7", [8, 16, 32, 64, 128]),
                                         ("yolov5-p34", [8, 16])])
def test_detection_levels(shared_dir, name: str, levels: list[int]) -> None:
    model = zoo.build_model(shared_dir / "reference/yolov5/hub" / f"{name}.yaml", device="meta")
    assert model.stride.tolist() == levels


def test_deploy_keeps_outputs_with_random_bn_statistics() -> None:
    torch.manual_seed(0)
    model = zoo.build_model("yolov5n")
    for m in model.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.uniform_(-0.5, 0.5)
            m.running_var.uniform_(0.5, 2.0)
            m.weight.data.uniform_(0.5, 1.5)
            m.bias.data.uniform_(-0.2, 0.2)
    model.eval()
    x = torch.rand(1, 3, 96, 96)
    with torch.no_grad():
        before = model(x)[0]
        zoo.deploy(model)
        after = model(x)[0]
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in model.modules())
    assert (after - before).abs().max() / before.abs().max() <= 1e-4


def test_segment_outputs() -> None:
    model = zoo.build_model("yolov5n-seg").eval()
    with torch.no_grad():
        det, proto, levels = model(torch.zeros(1, 3, 64, 64))
    assert det.shape == (1, 3 * (8 * 8 + 4 * 4 + 2 * 2), 117)
    assert proto.shape == (1, 32, 16, 16)
    assert len(levels) == 3
