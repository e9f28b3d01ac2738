"""Load a YAML config (YOLOv5 or Ultralytics schema) into validated, frozen dataclasses.

Only `yaml.safe_load`/`yaml.compose` read the file; argument strings go through `zoo.args`.
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Mapping

import yaml

from .activation import parse_activation
from .args import resolve_arg
from .errors import ConfigError
from .plugins import ensure_loaded
from .registry import REGISTRY
from .schema import Config, Row, Scale
CONFIG_DIR = Path(__file__).parent / "configs"


def builtin_names() -> dict[str, tuple[Path, str | None]]:
    """Built-in config names -> (file, scale). `yolov5-seg.yaml` with scales n..x gives yolov5n-seg..."""
    names: dict[str, tuple[Path, str | None]] = {}
    for path in sorted(CONFIG_DIR.glob("*.yaml")):
        data = yaml.safe_load(path.read_text())
        scales = data.get("scales") if isinstance(data, dict) else None
        if scales:
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
    text, path, stem, scale = _read_source(source, scale)
    data, lines = _parse_yaml(text, path)
    return _from_mapping(data, path, stem, scale, nc, lines)


def _read_source(source: str | Path, scale: str | None) -> tuple[str, str, str, str | None]:
    src = str(source)
    p = Path(src)
    if p.suffix in (".yaml", ".yml") or p.exists():
        if not p.is_file():
            raise ConfigError(src, f"no such config file (built-ins: {', '.join(sorted(builtin_names()))})")
        try:
            return p.read_text(), src, p.stem, scale
        except (OSError, UnicodeDecodeError) as e:
            raise ConfigError(src, f"cannot read: {e}") from None
    names = builtin_names()
    if src in names:
        file, builtin_scale = names[src]
        return file.read_text(), src, src, scale or builtin_scale
    import difflib
    near = difflib.get_close_matches(src, list(names), n=3)
    hint = f"; did you mean {', '.join(near)}?" if near else f" (built-ins: {', '.join(sorted(names))})"
    raise ConfigError(src, f"no such config file or built-in config{hint}")


def _parse_yaml(text: str, path: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """safe_load for the values, compose (also safe) for line numbers of keys and rows."""
    try:
        data = yaml.safe_load(text)
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except RecursionError:
        raise ConfigError(path, "YAML nesting is too deep") from None
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        line = mark.line + 1 if mark is not None else None
        problem = getattr(e, "problem", None) or str(e).splitlines()[0]
        raise ConfigError(path, f"YAML syntax error: {problem}", line=line) from None
    if not isinstance(data, dict):
        raise ConfigError(path, "a config must be a mapping with at least 'backbone'", line=1)
    lines: dict[str, Any] = {}
    if isinstance(node, yaml.MappingNode):
        for key_node, value_node in node.value:
            key = key_node.value
            lines[key] = key_node.start_mark.line + 1
            if key in ("backbone", "head") and isinstance(value_node, yaml.SequenceNode):
                lines[f"{key}.rows"] = [r.start_mark.line + 1 for r in value_node.value]
    return data, lines


def _key_error(path: str, lines: Mapping[str, Any], key: str, text: str) -> ConfigError:
    return ConfigError(path, f"{key}: {text}", line=lines.get(key))


MAX_REPEATS = 1000  # a row repeated more often is a typo, and would take minutes to build
MAX_MULTIPLE = 16.0  # depth/width multiples beyond this are typos (YOLOv5x uses 1.33/1.25)


def _positive(value: Any, *, integer: bool) -> bool:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return False
    return math.isfinite(value) and value > 0 and (not integer or isinstance(value, int))


def _pick_scale(data: Mapping[str, Any], path: str, stem: str, scale: str | None,
                lines: Mapping[str, Any]) -> tuple[Scale, dict[str, tuple[float, ...]] | None]:
    scales = data.get("scales")
    if scales is None:
        if scale is not None:
            raise ConfigError(path, f"--scale {scale} given but the config has no 'scales'")
        mult = {}
        for key in ("depth_multiple", "width_multiple"):
            value = data.get(key, 1.0)
            if not _positive(value, integer=False) or value > MAX_MULTIPLE:
                raise _key_error(path, lines, key, f"must be a number in (0, {MAX_MULTIPLE}], got {value!r}")
            mult[key] = float(value)
        return Scale(None, mult["depth_multiple"], mult["width_multiple"]), None
    if not isinstance(scales, dict) or not scales:
        raise _key_error(path, lines, "scales", "must map scale names to [depth, width, max_channels]")
    if "depth_multiple" in data or "width_multiple" in data:
        raise _key_error(path, lines, "scales", "give either 'scales' or depth/width multiples, not both")
    table: dict[str, tuple[float, ...]] = {}
    for key, value in scales.items():
        if (not isinstance(value, list) or len(value) not in (2, 3)
                or not all(_positive(v, integer=False) for v in value)
                or any(v > MAX_MULTIPLE for v in value[:2])):
            raise _key_error(path, lines, "scales", f"scale {key!r} must be [depth, width(, max_channels)] "
                             f"of positive numbers, got {value!r}")
        table[str(key)] = tuple(value)
    if scale is None:
        m = re.match(r"^[A-Za-z_]*?\d+([a-z])(?=$|[-_.])", stem)
        scale = m.group(1) if m and m.group(1) in table else next(iter(table))
    if scale not in table:
        raise ConfigError(path, f"scale {scale!r} is not in the config's scales ({', '.join(table)})",
                          line=lines.get("scales"))
    d, w, *cap = table[scale]
    return Scale(scale, float(d), float(w), int(cap[0]) if cap else None), table


def family_of(data: Mapping[str, Any], path: str = "<config>", lines: Mapping[str, Any] | None = None) -> str:
    """The config's family: its `family:` key, else the first registered family that recognises it."""
    ensure_loaded()
    lines = lines or {}
    names = sorted(f.name for f in REGISTRY.families())
    fam = data.get("family")
    if fam is not None:
        if fam not in names:
            raise _key_error(path, lines, "family", f"must be one of {', '.join(names)}, got {fam!r}")
        return fam
    try:
        return REGISTRY.recognise(data)
    except KeyError as e:
        raise ConfigError(path, e.args[0], line=1) from None


def _from_mapping(data: dict[str, Any], path: str, stem: str, scale: str | None, nc: int | None,
                  lines: Mapping[str, Any] | None = None) -> Config:
    lines = lines or {}
    if "backbone" not in data:
        raise ConfigError(path, "the config has no 'backbone' section", line=1)
    if nc is None:
        nc = data.get("nc", 80)
        if not _positive(nc, integer=True):
            raise _key_error(path, lines, "nc", f"must be a positive integer, got {nc!r}")
    elif not _positive(nc, integer=True):
        raise ConfigError(path, f"--nc must be a positive integer, got {nc!r}")
    ch = data.get("ch", 3)
    if not _positive(ch, integer=True):
        raise _key_error(path, lines, "ch", f"must be a positive integer, got {ch!r}")
    anchors = data.get("anchors")
    if anchors is not None and not _valid_anchors(anchors):
        raise _key_error(path, lines, "anchors",
                         "must be a positive int or a list of [w, h, w, h, ...] lists of numbers")
    act = None
    if data.get("activation") is not None:
        try:
            act = parse_activation(data["activation"])
        except ValueError as e:
            raise _key_error(path, lines, "activation", str(e)) from None
    sc, table = _pick_scale(data, path, stem, scale, lines)
    family = family_of(data, path, lines)
    names = {"nc": nc, "anchors": anchors}
    backbone = _rows(data, "backbone", 0, path, lines, names)
    head = _rows(data, "head", len(backbone), path, lines, names) if "head" in data else ()
    search = data.get("search")
    if search is not None and not isinstance(search, dict):
        raise _key_error(path, lines, "search", "must be a mapping")
    known = {"nc", "depth_multiple", "width_multiple", "anchors", "activation", "backbone", "head",
             "scales", "family", "search", "ch"}
    extra = {k: v for k, v in data.items() if k not in known}
    return Config(path=path, name=stem, family=family, nc=nc, scale=sc, backbone=backbone, head=head,
                  anchors=anchors, activation=act, scales=table, search=search, ch=ch, extra=extra)


def _valid_anchors(anchors: Any) -> bool:
    if isinstance(anchors, bool):
        return False
    if isinstance(anchors, int):
        return anchors > 0
    return (isinstance(anchors, list) and len(anchors) > 0 and all(
        isinstance(level, list) and level and len(level) % 2 == 0
        and all(_positive(v, integer=False) for v in level) for level in anchors))


def _rows(data: Mapping[str, Any], section: str, start: int, path: str, lines: Mapping[str, Any],
          names: Mapping[str, Any]) -> tuple[Row, ...]:
    raw = data.get(section)
    if raw is None or raw == []:
        raise _key_error(path, lines, section, "section is present but empty")
    if not isinstance(raw, list):
        raise _key_error(path, lines, section, "must be a list of [from, repeats, module, args] rows")
    row_lines = lines.get(f"{section}.rows") or []
    rows = []
    for j, item in enumerate(raw):
        index = start + j
        line = row_lines[j] if j < len(row_lines) else None
        rows.append(_row(item, index, section, line, path, names))
    return tuple(rows)


def _row(item: Any, index: int, section: str, line: int | None, path: str,
         names: Mapping[str, Any]) -> Row:
    def err(text: str, module: str | None = None) -> ConfigError:
        return ConfigError(path, text, row=index, module=module, line=line)

    if not isinstance(item, list) or len(item) != 4:
        raise err(f"a row must be [from, repeats, module, args], got {item!r}")
    f, n, module, args = item
    if not isinstance(module, str) or not module:
        raise err(f"module must be a name, got {module!r}")
    if isinstance(f, list):
        if not f or not all(isinstance(x, int) and not isinstance(x, bool) for x in f):
            raise err(f"'from' must be an int or a non-empty list of ints, got {f!r}", module)
        from_: int | tuple[int, ...] = tuple(f)
    elif isinstance(f, int) and not isinstance(f, bool):
        from_ = f
    else:
        raise err(f"'from' must be an int or a non-empty list of ints, got {f!r}", module)
    for x in (from_,) if isinstance(from_, int) else from_:
        target = index + x if x < 0 else x
        if x >= 0 and x >= index:
            raise err(f"'from' {x} points at this row or forward (a row can only read earlier rows)", module)
        if target < -1:
            raise err(f"'from' {x} is out of range (row {index} can read rows 0..{index - 1} "
                      f"or -1 for the previous row)", module)
    if isinstance(n, bool) or not isinstance(n, int) or not 1 <= n <= MAX_REPEATS:
        raise err(f"repeats must be an integer from 1 to {MAX_REPEATS}, got {n!r}", module)
    if args is None:
        args = []
    if not isinstance(args, list):
        raise err(f"args must be a list, got {args!r}", module)
    try:
        resolved = tuple(resolve_arg(a, names) for a in args)
    except ValueError as e:
        raise err(str(e), module) from None
    except RecursionError:
        raise err("arguments are nested too deeply", module) from None
    return Row(index=index, from_=from_, repeats=n, module=module, args=resolved, raw_args=tuple(args),
               section=section, line=line)


def config_to_mapping(cfg: Config) -> dict[str, Any]:
    """Back to plain YAML data, keys in YAML order (used to re-pick a scale and by search's exporter)."""
    data: dict[str, Any] = {"nc": cfg.nc}
    inferred = REGISTRY.recognise({"scales": cfg.scales} if cfg.scales else {})
    if cfg.family != inferred or REGISTRY.family(cfg.family).recognise is None:
        data["family"] = cfg.family
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
    return data
