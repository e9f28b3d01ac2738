"""The `zoo` command: parse, call the library, render. Commands are a table (zoo.command.Command)."""
from __future__ import annotations

import argparse
import importlib
import importlib.util
import sys
from typing import Sequence

from zoo.command import Command
from zoo.errors import ConfigError
from zoo.warning_capture import capture_warnings

# Packages that contribute subcommands through a COMMANDS list in their `commands` module.
EXTENSIONS = ("zoo.commands", "zoo.surgery_commands", "profiles.commands", "search.commands")


def _commands() -> list[Command]:
    out: list[Command] = []
    for name in EXTENSIONS:
        if importlib.util.find_spec(name) is not None:
            out.extend(importlib.import_module(name).COMMANDS)
    return out


def build_parser(commands: Sequence[Command]) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="zoo", description="Profile and search YOLO-style detectors from their YAML configs.",
        epilog="Run `zoo COMMAND --help` for a command's options and examples.")
    parser.add_argument("--plugin", action="append", default=[], metavar="FILE",
                        help="import a Python file that registers modules (repeatable)")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for cmd in commands:
        p = sub.add_parser(cmd.name, help=cmd.help, description=cmd.help, epilog=cmd.epilog,
                           formatter_class=argparse.RawDescriptionHelpFormatter)
        p.add_argument("--plugin", action="append", default=argparse.SUPPRESS, metavar="FILE",
                       help="import a Python file that registers modules (repeatable)")
        cmd.add_arguments(p)
        p.set_defaults(_run=cmd.run)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser(_commands())
    args = parser.parse_args(argv)
    if not getattr(args, "command", None):
        parser.print_help()
        return 2
    try:
        from zoo.plugins import ensure_loaded as ensure_builtin_modules, load_plugin

        ensure_builtin_modules()
        for path in args.plugin:
            load_plugin(path)
        with capture_warnings() as caught:
            code = int(args._run(args))
        from profiles.report import print_error

        for line in caught.lines:
            print_error(line, label="warning")
        return code
    except ConfigError as e:
        from profiles.report import print_error

        print_error(e.cli_message)
        return 1
    except KeyboardInterrupt:
        from profiles.report import print_error

        print_error("interrupted")
        return 130


if __name__ == "__main__":
    sys.exit(main())
