"""Costs of a built model: params, MACs/FLOPs, latency, memory; `formats` and `rows` turn a profile into text."""
from __future__ import annotations

from .crosscheck import CrossCheck, cross_check
from .flops import FlopCount, count_flops
from .profile import LayerProfile, ModelProfile, build_checked, check_stride_multiple, profile_model

__all__ = ["CrossCheck", "FlopCount", "LayerProfile", "ModelProfile", "build_checked", "check_stride_multiple",
           "count_flops", "cross_check", "profile_model"]
