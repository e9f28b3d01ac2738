"""TEMPORARY adapter: per-row terms (search.objectives.RowTerms) from a built model.

Replaced by search.objectives.candidate_rows(plan, costs) once zoo.plan / profiles.rowcosts land; until
then the benchmark and the objective tests read rows through here. fvcore's per-row MACs
(profiles.flops.count_flops(...).by_row) are counted once at one size and scaled by (imgsz / size)^2 for
other sizes that are multiples of 32 (each op's count is proportional to its output area there; the
benchmark recounts one model per layout at the largest size to assert it). Params per row as built,
conv calls from the deploy form (search.score's fan_in), output sizes from one forward at the counted size.
"""
from __future__ import annotations

from typing import Any, Mapping, Sequence

from search.objectives.base import ConvTerm, RowCost, RowTerms


def row_terms(model: Any, imgsz: int) -> tuple[RowTerms, ...]:
    """A built model's RowTerms at `imgsz` (counted there, nothing scaled)."""
    return at_size(model_rows(model, imgsz), imgsz, imgsz)


def model_rows(model: Any, size: int) -> list[dict[str, Any]]:
    """Rows of a built model as plain data: fvcore MACs at `size`, params as built, deploy-form calls."""
    import torch
    from torch import nn

    from profiles.flops import count_flops
    from profiles.rowcosts import fan_in
    from search.score import deployed_copy

    macs = count_flops(model, imgsz=size).by_row
    net = deployed_copy(model).eval()
    calls: dict[int, list[list[Any]]] = {i: [] for i in range(len(model.layers))}
    shapes: dict[int, tuple[int, ...] | None] = {}
    current = [-1]

    def on_call(module: nn.Module, inputs: Any, output: Any) -> None:
        linear = isinstance(module, nn.Linear)
        out = module.out_features if linear else module.out_channels
        calls[current[0]].append([fan_in(module), int(out), "linear" if linear else "conv"])

    def row_hook(index: int, module: nn.Module, inp: Any) -> Any:
        current[0] = index
        y = module(inp)
        shapes[index] = tuple(y.shape) if isinstance(y, torch.Tensor) else None
        return y

    handles = [m.register_forward_hook(on_call) for m in net.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]
    try:
        with torch.no_grad():
            net.run(torch.zeros(1, model.config.ch, size, size), row_hook)
    finally:
        for h in handles:
            h.remove()
    rows = []
    for info, module in zip(model.layers, model.model):
        shape = shapes[info.index]
        rows.append({"index": info.index, "section": info.section, "module": info.module,
                     "out_channels": info.out_channels, "stride": info.stride,
                     "out_hw": list(shape[-2:]) if shape is not None and len(shape) == 4 else None,
                     "params": sum(p.numel() for p in module.parameters()), "macs": int(macs.get(info.index, 0)),
                     "convs": calls[info.index]})
    return rows


def at_size(rows: Sequence[Mapping[str, Any]], counted: int, imgsz: int) -> tuple[RowTerms, ...]:
    """The counted rows at another size that is a multiple of 32 (areas and MACs scale by the square)."""
    if imgsz != counted and (imgsz % 32 or counted % 32):
        raise ValueError(f"imgsz= must be a multiple of 32 to scale counts, got {imgsz} (counted at {counted})")
    out = []
    for r in rows:
        hw = r["out_hw"]
        scaled_hw = (hw[0] * imgsz // counted, hw[1] * imgsz // counted) if hw else None
        macs = r["macs"] * imgsz * imgsz
        if macs % (counted * counted):
            raise ValueError(f"row {r['index']}: MACs {r['macs']} at {counted} px do not scale to {imgsz} px")
        cost = RowCost(int(r["params"]), macs // (counted * counted),
                       tuple(ConvTerm(float(f), int(c), k) for f, c, k in r["convs"]),
                       (1, r["out_channels"], *scaled_hw) if scaled_hw and r["out_channels"] else None)
        out.append(RowTerms(r["index"], r["section"], r["module"], r["out_channels"], r["stride"], scaled_hw, cost))
    return tuple(out)
