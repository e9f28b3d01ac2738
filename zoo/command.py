"""A CLI subcommand as data: cli.py is a table of these (Optuna's CLI style)."""
from __future__ import annotations

import argparse
from dataclasses import dataclass
from typing import Callable


@dataclass(frozen=True)
class Command:
    name: str
    help: str
    add_arguments: Callable[[argparse.ArgumentParser], None]
    run: Callable[[argparse.Namespace], int]  # returns the exit code; raises ConfigError for user errors
    epilog: str = ""  # examples shown by --help
