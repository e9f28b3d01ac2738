"""User modules through --plugin FILE: one decorated class, no builder change."""
from __future__ import annotations

import textwrap

import torch

import cli
import zoo

PLUGIN = textwrap.dedent('''
    import torch
    from torch import nn
    from zoo import register_module

    @register_module("ZooTestScaledConv", family="yolov5", io="out_arg", example=(-1, [32]))
    class ZooTestScaledConv(nn.Module):
        """A 1x1 conv with a learnable gain."""
        def __init__(self, c1, c2):
            super().__init__()
            self.conv = nn.Conv2d(c1, c2, 1)
            self.gain = nn.Parameter(torch.ones(1))
        def forward(self, x):
            return self.conv(x) * self.gain
''')

CONFIG = textwrap.dedent('''
    nc: 4
    depth_multiple: 1.0
    width_multiple: 0.5
    backbone:
      - [-1, 1, Conv, [32, 3, 2]]
      - [-1, 1, ZooTestScaledConv, [64]]
''')


def test_plugin_registers_a_module(tmp_path, capsys) -> None:
    plugin = tmp_path / "blocks.py"
    plugin.write_text(PLUGIN)
    cfg = tmp_path / "net.yaml"
    cfg.write_text(CONFIG)
    assert cli.main(["validate", str(cfg)]) == 1  # unknown before the plugin is loaded
    assert "ZooTestScaledConv" in capsys.readouterr().err
    assert cli.main(["validate", str(cfg), "--plugin", str(plugin)]) == 0
    assert cli.main(["--plugin", str(plugin), "validate", str(cfg)]) == 0  # loading twice is harmless
    model = zoo.build_model(cfg)
    assert model.layers[1].out_channels == 32 and model.layers[1].in_channels == (16,)
    assert sum(p.numel() for p in model.model[1].parameters()) == 16 * 32 + 32 + 1
    assert model(torch.zeros(1, 3, 32, 32)).shape == (1, 32, 16, 16)


def test_broken_plugin_is_one_line(tmp_path, capsys) -> None:
    plugin = tmp_path / "broken.py"
    plugin.write_text("def oops(:\n")
    assert cli.main(["validate", "yolov5n", "--plugin", str(plugin)]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "broken.py" in err[0] and "syntax error" in err[0]
