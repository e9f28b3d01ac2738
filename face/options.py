"""argparse types and flags shared by the commands: the same flag is checked the same way everywhere.

The run options (--imgsz, --batch, --threads, --runs, --device, --dtype) are checked by profiles.options,
the functions the API calls too: a bad value raises OptionError while the command line is parsed, which
cli.main prints as one `error: --imgsz 0 must be ...` line (exit 1) before any work starts. `add_*` add a
flag with its one help text; a handler calls them instead of spelling the flag out again.
Other numeric flags use positive_int/positive_float (a usage error, exit 2, naming the argument).
"""
from __future__ import annotations

import argparse
import re
from typing import Any, Callable, Protocol

import torch

from profiles.options import DTYPES, check_device, check_int
from zoo.errors import OptionError

BACKENDS = ("torch", "onnxruntime")


def int_option(param: str) -> Callable[[str], int]:
    """An argparse type for one of profiles.options.BOUNDS' integer options (`imgsz`, `batch`, ...)."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise OptionError(None, param, text, "is not an integer") from None
        return check_int(param, value)

    parse.__name__ = param  # argparse names the type in its own messages
    return parse


class Flags(Protocol):
    """An ArgumentParser or one of its argument groups."""

    def add_argument(self, *args: Any, **kwargs: Any) -> Any: ...


imgsz = int_option("imgsz")
batch = int_option("batch")
threads = int_option("threads")
runs = int_option("runs")


def device(text: str) -> str:
    """cpu, cuda, cuda:N or mps, present on this machine (CUDA missing: one error line, not a traceback)."""
    check_device(text)
    return text


def imgsz_choices(text: str) -> int | list[int] | str:
    """One size (`320`), a list searched as a dimension (`256,320,384`) or a range (`256:416[:32]`)."""
    if ":" in text:
        from search.dimensions.imgsz import parse_sizes

        try:
            return parse_sizes(text)  # type: ignore[return-value]
        except ValueError as e:
            raise OptionError(None, "imgsz", text, str(e)) from None
    sizes = sorted({imgsz(t.strip()) for t in text.split(",")})
    return sizes[0] if len(sizes) == 1 else sizes


def add_imgsz_choices(p: Flags, default: int = 640) -> None:
    p.add_argument("--imgsz", type=imgsz_choices, default=default, metavar="PX[,PX...]|FROM:TO[:STEP]",
                   help="square input size in pixels (a multiple of the model's max stride); several sizes or a "
                        "range make the size a searched dimension (costs and budgets at each candidate's size)")


def add_imgsz(p: Flags, default: int = 640) -> None:
    p.add_argument("--imgsz", type=imgsz, default=default, metavar="PX",
                   help="square input size in pixels (a multiple of the model's max stride)")


def add_batch(p: Flags, default: int = 1) -> None:
    p.add_argument("--batch", type=batch, default=default, metavar="N", help="images per forward pass")


def add_threads(p: Flags, default: int = 1) -> None:
    p.add_argument("--threads", type=threads, default=default, metavar="N", help="intra-op threads while timing")


def add_device(p: Flags, default: str = "cpu") -> None:
    p.add_argument("--device", type=device, default=default, help="cpu, cuda, cuda:N or mps")


def add_provider(p: Flags) -> None:
    p.add_argument("--provider", metavar="EP",
                   help="--backend onnxruntime: its execution provider, cpu (default), cuda, tensorrt or a full "
                        "name (CUDAExecutionProvider); recorded in a table's fingerprint")


def provider_settings(provider: str | None, backend: str, source: str) -> dict[str, Any]:
    """The backend settings of --provider (none when absent); --provider without onnxruntime is an error."""
    from zoo.errors import ConfigError

    if provider is None:
        return {}
    if backend != "onnxruntime":
        raise ConfigError(source, "--provider is for --backend onnxruntime")
    return {"providers": (provider,)}


def add_dtype(p: Flags, default: str = "float32") -> None:
    p.add_argument("--dtype", choices=tuple(DTYPES), default=default,
                   help="weights and inputs while timing and for memory (counting is always float32)")


def dtype_of(name: str) -> torch.dtype:
    return DTYPES[name]


def positive_int(text: str) -> int:
    try:
        v = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None
    if v < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {v}")
    return v


def positive_float(text: str) -> float:
    try:
        v = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not v > 0:
        raise argparse.ArgumentTypeError(f"must be > 0, got {text}")
    return v


def weights(text: str) -> list[float]:
    """`0,0,1,1,6` -> [0.0, 0.0, 1.0, 1.0, 6.0] (one weight per stride 2, 4, 8, ...)."""
    try:
        ws = [float(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"comma-separated numbers expected, got {text!r}") from None
    if not ws:
        raise argparse.ArgumentTypeError("at least one weight")
    return ws


def make_backend(name: str, *, source: str, fingerprint: Any = None, **settings: Any) -> Any:
    """profiles.backends.get_backend with the CLI's flags: a bad setting is a ConfigError naming its flag
    (`--threads`, `--device`, `--backend`), a missing extra the one-line hint. With a table's `fingerprint`,
    profiles.backends.backend_of: its recorded settings, the flags (threads, device) over them."""
    from profiles.backends import backend_of, get_backend
    from zoo.errors import ConfigError

    try:
        if fingerprint is not None:
            return backend_of(fingerprint, backend=name, **settings)
        return get_backend(name, **settings)
    except ValueError as e:
        text = re.sub(r"^(\w+)=", lambda m: f"--{m.group(1)} ", str(e)).replace("--providers ", "--provider ", 1)
        raise ConfigError(source, text) from None
