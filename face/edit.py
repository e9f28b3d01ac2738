"""`zoo edit`: config surgery from the command line (the API is zoo.surgery)."""
from __future__ import annotations

import argparse

EXAMPLES = ("examples:\n"
            "  zoo edit my-scales.yaml --scale m --delete 5 -o out.yaml\n"
            "  zoo edit yolov5l-gfpn --insert-after 4 --row \"[-1, 1, Conv, [256, 3, 1]]\" -o out.yaml\n"
            "  zoo edit my.yaml --replace 8 --row \"[-1, 3, C3_GhostDynamicConv, [1024]]\" -o out.yaml\n"
            "  zoo edit my.yaml --delete 5 -o out.yaml")


def edit_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("config", metavar="CFG", help="YAML file or built-in name")
    op = p.add_mutually_exclusive_group(required=True)
    op.add_argument("--insert-after", type=int, metavar="I", help="insert --row after row I (chained)")
    op.add_argument("--replace", type=int, metavar="I", help="replace row I with --row")
    op.add_argument("--delete", type=int, metavar="I", help="delete row I")
    p.add_argument("--row", help='the new row as YAML, e.g. "[-1, 2, GhostModuleV3, [512, 3]]"')
    p.add_argument("--scale", help="edit at this scale of a `scales` config and write it out in OUT "
                                   "(default: the scale a built-in name stands for, e.g. l of yolov5l-gfpn)")
    p.add_argument("-o", "--out", required=True, metavar="OUT", help="where to write the edited YAML")
    p.add_argument("--no-check", action="store_true",
                   help="do not build the result (on the meta device) before writing it")


def edit_run(args: argparse.Namespace) -> int:
    from zoo import surgery, yamlio
    from zoo.errors import ConfigError

    from .console import note

    scale = args.scale or surgery.builtin_scale(args.config)
    data = surgery.pin_scale(surgery.load(args.config), scale, file=args.config)
    if args.delete is not None:
        if args.row is not None:
            raise ConfigError(args.config, "--delete takes no --row")
        edited = surgery.delete(data, args.delete, file=args.config)
        what = f"row {args.delete} deleted"
    else:
        if args.row is None:
            raise ConfigError(args.config, "--insert-after and --replace need --row")
        row = surgery.parse_row(args.row)
        if args.insert_after is not None:
            edited = surgery.insert_after(data, args.insert_after, row, file=args.config)
            what = f"row inserted after row {args.insert_after}"
        else:
            edited = surgery.replace(data, args.replace, row, file=args.config)
            what = f"row {args.replace} replaced"
    if not args.no_check:
        surgery.check_builds(edited, file=args.out)
    pinned = f"; scale {scale} written out" if scale is not None else ""
    yamlio.write_config(edited, args.out, header=f"edited by `zoo edit` from {args.config}: {what}{pinned}\n"
                                                 f"rows are renumbered; comments of the source are not kept")
    note(f"wrote {args.out} ({what}{pinned})")
    return 0
