"""The `zoo` command: its table of subcommands and main().

Each row names a subcommand (`lut build`: a command of the group `lut`, GROUPS says what a group is
for), its one-line help, the handler module of face that adds its arguments and runs it, and its
examples. A handler returns the exit code; a ConfigError becomes one `error:` line
and exit 1, Ctrl-C exit 130, a usage error (argparse) exit 2.
"""
from __future__ import annotations

import argparse
import sys
from importlib.metadata import PackageNotFoundError, version as installed_version
from dataclasses import dataclass
from typing import Any, Callable, Sequence

from zoo.errors import ConfigError
from face import configs, edit, lut, profile, search
from face.console import error, warning
from zoo.plugins import ensure_loaded, load_plugin
from zoo.warning_capture import capture_warnings


@dataclass(frozen=True)
class Command:
    name: str
    help: str
    add_arguments: Callable[[argparse.ArgumentParser], None]
    run: Callable[[argparse.Namespace], int]  # returns the exit code; raises ConfigError for user errors
    epilog: str = ""  # examples shown by --help


COMMANDS: tuple[Command, ...] = (
    Command("configs", "List the built-in configs (usable by name).",
            configs.configs_args, configs.configs_run, configs.CONFIGS_EXAMPLES),
    Command("modules", "List registered modules with their family and channel rule.",
            configs.modules_args, configs.modules_run, configs.MODULES_EXAMPLES),
    Command("validate", "Check configs (parse, resolve, shapes) without allocating weights.",
            configs.validate_args, configs.validate_run, configs.VALIDATE_EXAMPLES),
    Command("edit", "Insert, replace or delete a config row; every `from` keeps pointing at its layer.",
            edit.edit_args, edit.edit_run, edit.EXAMPLES),
    Command("profile", "Params, MACs/GFLOPs, latency and memory per YAML row and in total.",
            profile.profile_args, profile.profile_run, profile.EXAMPLES),
    Command("search", "Search widths and depths of a config under budgets (training-free score, Optuna); "
                      "export the best.",
            search.search_args, search.search_run, search.SEARCH_EXAMPLES),
    Command("score", "Training-free score of a config (default objective feature_entropy; --objective mae: "
                     "MAE-NAS), with its parts.",
            search.score_args, search.score_run, search.SCORE_EXAMPLES),
    Command("export", "Write any trial of a study as an explicit config.",
            search.export_args, search.export_run, search.EXPORT_EXAMPLES),
    Command("lut build", "Measure every distinct row of configs (and of candidates of their search spaces) "
                         "on this device into a latency table; resumable.",
            lut.build_args, lut.build_run, lut.BUILD_EXAMPLES),
    Command("lut show", "A latency table's fingerprint, coverage, calibration and residuals.",
            lut.show_args, lut.show_run, lut.SHOW_EXAMPLES),
    Command("lut anchor", "Time a few whole models on a table's device now and scale its predictions to the "
            "device's speed of this moment.",
            lut.anchor_args, lut.anchor_run, lut.ANCHOR_EXAMPLES),
    Command("lut export", "Export every distinct row (and whole models) of configs as ONNX files with a runner, "
                          "to build a latency table on a device without torch or zoo.",
            lut.export_args, lut.export_run, lut.EXPORT_EXAMPLES),
    Command("lut import", "Build a latency table from the runner's measurements of an export.",
            lut.import_args, lut.import_run, lut.IMPORT_EXAMPLES),
)
GROUPS = {"lut": "Per-device latency tables: predicted latency from measured rows (`zoo lut build`, `zoo lut show`, `zoo lut export`, `zoo lut import`)."}

PLUGIN_HELP = "import a Python file that registers modules (repeatable)"
DISTRIBUTION = "zoo-nas"  # the package's name in pyproject.toml: `zoo --version` reads its installed version


class HelpFormatter(argparse.RawDescriptionHelpFormatter, argparse.ArgumentDefaultsHelpFormatter):
    """Descriptions and examples as written; every option's default after its help, unless there is none
    to show (a flag without a value, None, an empty list) or the help already says what the default is."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        text = action.help or ""
        default = action.default
        if (action.nargs == 0 or default is None or default is argparse.SUPPRESS
                or (isinstance(default, list) and not default) or "default" in text.lower()):
            return text
        return super()._get_help_string(action)


def version() -> str:
    try:
        return installed_version(DISTRIBUTION)
    except PackageNotFoundError:  # run from a source tree that was never installed
        return "unknown (not installed)"


def build_parser(commands: Sequence[Command] = COMMANDS) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="zoo", description="Profile and search YOLO-style detectors from their YAML configs.",
        epilog="Run `zoo COMMAND --help` for a command's options and examples.", formatter_class=HelpFormatter)
    parser.add_argument("--version", action="version", version=f"%(prog)s {version()}")
    parser.add_argument("--plugin", action="append", default=[], metavar="FILE", help=PLUGIN_HELP)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    groups: dict[str, Any] = {}
    for cmd in commands:
        group, _, name = cmd.name.rpartition(" ")
        where = sub
        if group:
            if group not in groups:
                gp = sub.add_parser(group, help=GROUPS.get(group, ""), description=GROUPS.get(group, ""),
                                    formatter_class=HelpFormatter)
                gp.set_defaults(_run=lambda _args, gp=gp: (gp.print_help(), 2)[1])
                groups[group] = gp.add_subparsers(dest=f"{group}_command", metavar="COMMAND")
            where = groups[group]
        p = where.add_parser(name, help=cmd.help, description=cmd.help, epilog=cmd.epilog,
                             formatter_class=HelpFormatter)
        p.add_argument("--plugin", action="append", default=argparse.SUPPRESS, metavar="FILE", help=PLUGIN_HELP)
        cmd.add_arguments(p)
        p.set_defaults(_run=cmd.run)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(argv)  # the shared option types raise OptionError: one line, exit 1
        if not getattr(args, "command", None):
            parser.print_help()
            return 2
        ensure_loaded()
        for path in args.plugin:
            load_plugin(path)
        with capture_warnings() as caught:
            code = int(args._run(args))
        for line in caught.lines:  # warnings raised while the command ran, as the project's own lines
            warning(line)
        return code
    except ConfigError as e:
        error(e.cli_message)
        return 1
    except KeyboardInterrupt:
        error("interrupted")
        return 130


if __name__ == "__main__":
    sys.exit(main())
