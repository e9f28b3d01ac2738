"""Where blocks and families come from: the built-in family package, a user's `--plugin FILE`, and
packages in the `zoo.modules` entry-point group. All three register the same way (decorators run on
import); the registry itself imports none of them.
"""
from __future__ import annotations

import importlib
import importlib.util
from importlib.metadata import entry_points
from pathlib import Path

from .errors import ConfigError
from .registry import REGISTRY

BUILTIN_PACKAGES = ("zoo.modules",)  # the families that ship with zoo, loaded like any plugin package
ENTRY_POINT_GROUP = "zoo.modules"


def ensure_loaded() -> None:
    """Import the built-in families and the entry-point packages, once per process."""
    for name in BUILTIN_PACKAGES:
        if name not in REGISTRY.loaded:
            importlib.import_module(name)
            REGISTRY.loaded.add(name)
    if "entry-points" not in REGISTRY.loaded:
        REGISTRY.loaded.add("entry-points")
        for ep in entry_points(group=ENTRY_POINT_GROUP):
            ep.load()


def load_plugin(path: str | Path) -> None:
    """Import a user file whose decorated classes register themselves (`--plugin FILE`); once per file."""
    p = Path(path)
    if not p.is_file():
        raise ConfigError(str(p), "plugin file not found")
    key = str(p.resolve())
    if key in REGISTRY.loaded:
        return
    spec = importlib.util.spec_from_file_location(f"zoo_plugin_{p.stem}", p)
    if spec is None or spec.loader is None:
        raise ConfigError(str(p), "cannot import plugin (not a Python file?)")
    module = importlib.util.module_from_spec(spec)
    try:
        spec.loader.exec_module(module)
    except ValueError as e:  # duplicate registrations and bad rule names
        raise ConfigError(str(p), str(e)) from None
    except SyntaxError as e:
        raise ConfigError(str(p), f"syntax error: {e.msg}", line=e.lineno) from None
    except ImportError as e:
        raise ConfigError(str(p), f"plugin import failed: {e}") from None
    REGISTRY.loaded.add(key)


__all__ = ["ensure_loaded", "load_plugin"]
