"""zoo: build YOLO-style detectors from YAML, profile them, search them training-free."""
from __future__ import annotations

from .activation import Activation, parse_activation
from .builder import build_model
from .config import Config, Row, Scale, builtin_names, load_config
from .deploy import deploy
from .errors import ConfigError
from .graph import LayerInfo, ZooModel
from .plan import ModelPlan, RowPlan, RowSignature, plan_config
from .plugins import load_plugin
from .registry import REGISTRY, register_family, register_module
from .rules import Resolved, RowContext, RuleError, ShapeSpec

__all__ = [
    "Activation", "Config", "ConfigError", "LayerInfo", "REGISTRY", "Resolved", "Row", "RowContext",
    "RuleError", "Scale", "ShapeSpec", "ZooModel", "build_model", "builtin_names", "deploy",
    "load_config", "load_plugin", "parse_activation", "register_module", "register_family", "plan_config",
    "ModelPlan", "RowPlan", "RowSignature",
]
