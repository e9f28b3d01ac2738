"""Costs of a built model: params, MACs/FLOPs, latency, memory; `report` is the only printer."""
from __future__ import annotations
