"""Load a YAML config (YOLOv5 or Ultralytics schema) into validated, frozen dataclasses.

Only `zoo.yamlio` reads the file; argument strings go through `zoo.args`; every number is range-checked
here against `zoo.limits` as it enters. `check_row` is the one row validator (surgery uses it too).
"""
from __future__ import annotations

import math
import re
from dataclasses import replace
from pathlib import Path
from typing import Any, Mapping

from . import yamlio
from .activation import parse_activation
from .args import resolve_arg
from .errors import ConfigError, OptionError, shown
from .limits import (MAX_ANCHORS, MAX_ARG, MAX_INPUT_CHANNELS, MAX_KEYPOINTS, MAX_LEVELS, MAX_MULTIPLE, MAX_NC,
                     MAX_REG_MAX, MAX_REPEATS)
from .plugins import ensure_loaded
from .registry import REGISTRY
from .schema import Config, Row, Scale
from .yamlio import NO_LINES, Lines
CONFIG_DIR = Path(__file__).parent / "configs"


def builtin_names() -> dict[str, tuple[Path, str | None]]:
    """Built-in config names -> (file, scale). `yolov5-seg.yaml` with scales n..x gives yolov5n-seg..."""
    names: dict[str, tuple[Path, str | None]] = {}
    for path in sorted(CONFIG_DIR.glob("*.yaml")):
        data = yamlio.read_file(path).data
        scales = data.get("scales") if isinstance(data, dict) else None
        if scales and len(scales) == 1 and path.stem.partition("-")[0].endswith(str(next(iter(scales)))):
            names[path.stem] = (path, str(next(iter(scales))))  # one scale, named in the file (yolov10n.yaml)
        elif scales:
            base, sep, rest = path.stem.partition("-")
            for key in scales:
                names[f"{base}{key}{sep}{rest}"] = (path, str(key))
        else:
            names[path.stem] = (path, None)
    return names


def load_config(source: str | Path | Mapping[str, Any] | Config, *, scale: str | None = None,
                nc: int | None = None) -> Config:
    """A built-in name, a YAML path, a parsed mapping or a Config -> a validated Config."""
    if isinstance(source, Config):
        cfg = source
        if scale is not None and cfg.scales:
            cfg = _from_mapping(config_to_mapping(cfg), cfg.path, cfg.name, scale, None)
        return replace(cfg, nc=nc) if nc is not None and nc != cfg.nc else cfg
    if isinstance(source, Mapping):
        return _from_mapping(dict(source), "<dict>", str(source.get("name", "config")), scale, nc)
    file, stem, builtin_scale = locate(source)
    path, scale = str(source), scale or builtin_scale
    doc = yamlio.read_file(file, source=path)
    if not isinstance(doc.data, dict):
        raise ConfigError(path, "a config must be a mapping with at least 'backbone'", line=1)
    return _from_mapping(doc.data, path, stem, scale, nc, doc.lines)


CHECKPOINT_SUFFIXES = (".pt", ".pth", ".ckpt", ".onnx", ".safetensors", ".bin", ".engine", ".tflite")


def locate(source: str | Path) -> tuple[Path, str, str | None]:
    """A YAML path or a built-in name -> (its file, its name, the scale a built-in name stands for)."""
    src = str(source)
    p = Path(src)
    if p.suffix.lower() in CHECKPOINT_SUFFIXES:
        use = f"the built-in {p.stem}" if p.stem in builtin_names() else "a built-in name"
        raise ConfigError(src, f"this is a weights file; zoo reads YAML model configs, not checkpoints: give "
                               f"{use} or the model's .yaml (`zoo configs` lists the built-ins)")
    if p.suffix in (".yaml", ".yml") or p.exists():
        if not p.is_file():
            raise ConfigError(src, f"no such config file (built-ins: {', '.join(sorted(builtin_names()))})")
        return p, p.stem, None
    names = builtin_names()
    if src in names:
        file, builtin_scale = names[src]
        return file, src, builtin_scale
    import difflib
    lowered = {n.lower(): n for n in names}  # a name's case is a typo too (YOLOv5s, Yolov8N)
    near = [lowered[n] for n in difflib.get_close_matches(src.lower(), list(lowered), n=3)]
    hint = f"; did you mean {', '.join(near)}?" if near else f" (built-ins: {', '.join(sorted(names))})"
    raise ConfigError(src, f"no such config file or built-in config{hint}")


def _key_error(path: str, lines: Lines, key: str, text: str) -> ConfigError:
    return ConfigError(path, f"{key}: {text}", line=lines.key(key))


def _positive(value: Any, *, integer: bool, limit: float = MAX_ARG) -> bool:
    """A positive number up to `limit` (ints of any size compare without overflowing)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return False
    if isinstance(value, float) and (integer or not math.isfinite(value)):
        return False
    return 0 < value <= limit


def _pick_scale(data: Mapping[str, Any], path: str, stem: str, scale: str | None,
                lines: Lines) -> tuple[Scale, dict[str, tuple[float, ...]] | None]:
    scales = data.get("scales")
    if scales is None:
        if scale is not None:
            raise OptionError(path, "scale", scale, "is given but the config has no 'scales'")
        mult = {}
        for key in ("depth_multiple", "width_multiple"):
            value = data.get(key, 1.0)
            if not _positive(value, integer=False, limit=MAX_MULTIPLE):
                raise _key_error(path, lines, key, f"must be a number in (0, {MAX_MULTIPLE}], got {shown(value)}")
            mult[key] = float(value)
        return Scale(None, mult["depth_multiple"], mult["width_multiple"]), None
    if not isinstance(scales, dict) or not scales:
        raise _key_error(path, lines, "scales", "must map scale names to [depth, width, max_channels]")
    if "depth_multiple" in data or "width_multiple" in data:
        raise _key_error(path, lines, "scales", "give either 'scales' or depth/width multiples, not both")
    table: dict[str, tuple[float, ...]] = {}
    for key, value in scales.items():
        if (not isinstance(value, list) or len(value) not in (2, 3)
                or not all(_positive(v, integer=False, limit=MAX_MULTIPLE) for v in value[:2])
                or not all(_positive(v, integer=False) for v in value[2:])):
            raise _key_error(path, lines, "scales", f"scale {shown(key)} must be [depth, width(, max_channels)]: "
                             f"multiples in (0, {MAX_MULTIPLE}], a cap up to {MAX_ARG:,}; got {shown(value)}")
        table[str(key)] = tuple(value)
    if scale is None:
        m = re.match(r"^[A-Za-z_]*?\d+([a-z])(?=$|[-_.])", stem)
        scale = m.group(1) if m and m.group(1) in table else next(iter(table))
    if scale not in table:
        raise ConfigError(path, f"scale {scale!r} is not in the config's scales ({', '.join(table)})",
                          line=lines.key("scales"))
    d, w, *cap = table[scale]
    return Scale(scale, float(d), float(w), cap[0] if cap else None), table


def family_of(data: Mapping[str, Any], path: str = "<config>", lines: Lines = NO_LINES) -> str:
    """The config's family: its `family:` key, else the first registered family that recognises it."""
    ensure_loaded()
    names = sorted(f.name for f in REGISTRY.families())
    fam = data.get("family")
    if fam is not None:
        if fam not in names:
            raise _key_error(path, lines, "family", f"must be one of {', '.join(names)}, got {shown(fam)}")
        return fam
    try:
        return REGISTRY.recognise(data)
    except KeyError as e:
        raise ConfigError(path, e.args[0], line=1) from None


def _from_mapping(data: dict[str, Any], path: str, stem: str, scale: str | None, nc: int | None,
                  lines: Lines = NO_LINES) -> Config:
    if "backbone" not in data:
        raise ConfigError(path, "the config has no 'backbone' section", line=1)
    if nc is None:
        nc = data.get("nc", 80)
        if not _positive(nc, integer=True, limit=MAX_NC):
            raise _key_error(path, lines, "nc", f"must be an integer from 1 to {MAX_NC:,}, got {shown(nc)}")
    elif not _positive(nc, integer=True, limit=MAX_NC):
        raise OptionError(path, "nc", nc, f"must be an integer from 1 to {MAX_NC:,}")
    ch = data.get("ch", 3)
    if not _positive(ch, integer=True, limit=MAX_INPUT_CHANNELS):
        raise _key_error(path, lines, "ch", f"must be an integer from 1 to {MAX_INPUT_CHANNELS:,} (input "
                                            f"channels), got {shown(ch)}")
    anchors = data.get("anchors")
    problem = None if anchors is None else anchors_problem(anchors)
    if problem is not None:
        raise _key_error(path, lines, "anchors", problem)
    act = None
    if data.get("activation") is not None:
        try:
            act = parse_activation(data["activation"])
        except ValueError as e:
            raise _key_error(path, lines, "activation", str(e)) from None
    sc, table = _pick_scale(data, path, stem, scale, lines)
    family = family_of(data, path, lines)
    names = {"nc": nc, "anchors": anchors, **_head_keys(data, path, lines)}
    backbone = _rows(data, "backbone", 0, path, lines, names)
    head = _rows(data, "head", len(backbone), path, lines, names) if "head" in data else ()
    search = data.get("search")
    if search is not None and not isinstance(search, dict):
        raise _key_error(path, lines, "search", "must be a mapping")
    # `text_model:` (YOLOE) names the text encoder; it is no part of the graph: class embeddings enter
    # as constants (zoo.modules.world), so the key is kept as data and ignored for building
    known = {"nc", "depth_multiple", "width_multiple", "anchors", "activation", "backbone", "head",
             "scales", "family", "search", "ch"}
    extra = {k: v for k, v in data.items() if k not in known}
    return Config(path=path, name=stem, family=family, nc=nc, scale=sc, backbone=backbone, head=head,
                  anchors=anchors, activation=act, scales=table, search=search, ch=ch, extra=extra)


def _head_keys(data: Mapping[str, Any], path: str, lines: Lines) -> dict[str, Any]:
    """The head keys Ultralytics reads from a config's top level (`reg_max`, `end2end`, `kpt_shape`),
    checked; rows may name them as arguments (`[nc, kpt_shape]`), and head rules read them (ctx.keys)."""
    keys = {k: data[k] for k in ("reg_max", "end2end", "kpt_shape") if k in data}
    reg_max = keys.get("reg_max")
    if "reg_max" in keys and (isinstance(reg_max, bool) or not isinstance(reg_max, int)
                              or not 1 <= reg_max <= MAX_REG_MAX):
        raise _key_error(path, lines, "reg_max", f"must be an integer from 1 to {MAX_REG_MAX} (DFL bins), "
                                                 f"got {shown(reg_max)}")
    if keys.get("end2end") is not None and not isinstance(keys["end2end"], bool):
        raise _key_error(path, lines, "end2end", f"must be true or false, got {shown(keys['end2end'])}")
    kpt = keys.get("kpt_shape")
    if "kpt_shape" in keys and not (isinstance(kpt, list) and len(kpt) == 2
                                    and all(isinstance(v, int) and not isinstance(v, bool) for v in kpt)
                                    and 1 <= kpt[0] <= MAX_KEYPOINTS and kpt[1] in (2, 3)):
        raise _key_error(path, lines, "kpt_shape", f"must be [keypoints (1 to {MAX_KEYPOINTS}), dims (2 or 3)], "
                                                   f"got {shown(kpt)}")
    return keys


def anchors_problem(anchors: Any, *, table: bool = False) -> str | None:
    """Why `anchors` is not a count per level or a [w, h, w, h, ...] list per level; None when valid.

    `table=True` checks what Detect receives: lists only, zeros allowed (a count n becomes YOLOv5's
    placeholder table 0..2n-1 per level, evolved later by AutoAnchor).
    """
    if isinstance(anchors, int) and not isinstance(anchors, bool) and not table:
        if 1 <= anchors <= MAX_ANCHORS:
            return None
        return f"an anchor count must be from 1 to {MAX_ANCHORS} per level, got {shown(anchors)}"
    if not isinstance(anchors, list) or not anchors:
        return f"must be a positive int or a list of [w, h, w, h, ...] lists of numbers, got {shown(anchors)}"
    if len(anchors) > MAX_LEVELS:
        return f"has {len(anchors)} levels; at most {MAX_LEVELS}"
    for level in anchors:
        if (not isinstance(level, list) or not level or len(level) % 2
                or not all(_positive(v, integer=False) or (table and v == 0 and not isinstance(v, bool))
                           for v in level)):
            return (f"each level must be a [w, h, w, h, ...] list of positive numbers up to {MAX_ARG:,}, "
                    f"got {shown(level)}")
        if len(level) > 2 * MAX_ANCHORS:
            return f"a level has {len(level) // 2} anchors; at most {MAX_ANCHORS}"
        if len(level) != len(anchors[0]):
            return f"every level must have the same number of anchors, got {shown(anchors)}"
    return None


def _rows(data: Mapping[str, Any], section: str, start: int, path: str, lines: Lines,
          names: Mapping[str, Any]) -> tuple[Row, ...]:
    raw = data.get(section)
    if raw is None or raw == []:
        raise _key_error(path, lines, section, "section is present but empty")
    if not isinstance(raw, list):
        raise _key_error(path, lines, section, "must be a list of [from, repeats, module, args] rows")
    return tuple(check_row(item, start + j, file=path, section=section, line=lines.item(section, j), names=names)
                 for j, item in enumerate(raw))


def check_row(item: Any, index: int, *, file: str | None, section: str = "", line: int | None = None,
              names: Mapping[str, Any] | None = None) -> Row:
    """The one row validator: `[from, repeats, module, args]` standing at global row `index`.

    `from` may only read earlier rows or the image (-1 from row 0), repeats are 1..MAX_REPEATS, args are
    plain data resolved by zoo.args (numbers range-checked there). `names` are the config's nc/anchors.
    """
    def err(text: str, module: str | None = None) -> ConfigError:
        return ConfigError(file, text, row=index, module=module, line=line)

    if not isinstance(item, list) or len(item) != 4:
        raise err(f"a row must be [from, repeats, module, args], got {shown(item)}")
    f, n, module, args = item
    if not isinstance(module, str) or not module:
        raise err(f"module must be a name, got {shown(module)}")
    if isinstance(f, list):
        if not f or not all(isinstance(x, int) and not isinstance(x, bool) for x in f):
            raise err(f"'from' must be an int or a non-empty list of ints, got {shown(f)}", module)
        from_: int | tuple[int, ...] = tuple(f)
    elif isinstance(f, int) and not isinstance(f, bool):
        from_ = f
    else:
        raise err(f"'from' must be an int or a non-empty list of ints, got {shown(f)}", module)
    for x in (from_,) if isinstance(from_, int) else from_:
        if x >= index:
            raise err(f"'from' {shown(x)} points forward, at this row or later (row {index} can read rows "
                      f"0..{index - 1} or -1 for the previous row)", module)
        if x < 0 and index + x < -1:
            raise err(f"'from' {shown(x)} is out of range (row {index} can read rows 0..{index - 1} "
                      f"or -1 for the previous row)", module)
    if isinstance(n, bool) or not isinstance(n, int) or not 1 <= n <= MAX_REPEATS:
        raise err(f"repeats must be an integer from 1 to {MAX_REPEATS}, got {shown(n)}", module)
    if args is None:
        args = []
    if not isinstance(args, list):
        raise err(f"args must be a list, got {shown(args)}", module)
    try:
        resolved = tuple(resolve_arg(a, names or {}) for a in args)
    except ValueError as e:
        raise err(str(e), module) from None
    except RecursionError:
        raise err("arguments are nested too deeply", module) from None
    return Row(index=index, from_=from_, repeats=n, module=module, args=resolved, raw_args=tuple(args),
               section=section, line=line)


def config_to_mapping(cfg: Config) -> dict[str, Any]:
    """Back to plain YAML data, keys in YAML order (used to re-pick a scale and by search's exporter)."""
    data: dict[str, Any] = {"nc": cfg.nc}
    if cfg.scales:
        data["scales"] = {k: list(v) for k, v in cfg.scales.items()}
    else:
        data["depth_multiple"] = cfg.scale.depth
        data["width_multiple"] = cfg.scale.width
    if cfg.anchors is not None:
        data["anchors"] = cfg.anchors
    if cfg.activation is not None:
        data["activation"] = str(cfg.activation)
    if cfg.ch != 3:
        data["ch"] = cfg.ch
    for sec in ("backbone", "head"):
        rows = getattr(cfg, sec)
        if rows:
            data[sec] = [[r.from_ if isinstance(r.from_, int) else list(r.from_), r.repeats, r.module,
                          list(r.raw_args)] for r in rows]
    if cfg.search:
        data["search"] = dict(cfg.search)
    data.update(cfg.extra)
    try:  # `family:` only where the registered recognisers would not find it from the rest
        inferred = REGISTRY.recognise(data) if REGISTRY.family(cfg.family).recognise is not None else None
    except KeyError:
        inferred = None
    if inferred != cfg.family:
        data = {"nc": cfg.nc, "family": cfg.family, **{k: v for k, v in data.items() if k != "nc"}}
    return data
