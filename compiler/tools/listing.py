"""`netc list`: the library's networks with their counts (or a folder's, or those a pattern
matches), and with --blocks its block types and their parameters."""

from __future__ import annotations

import argparse
import json
import os
import sys

from ..errors import one_line
from .blocks import block_rows
from .cli_support import EXIT_FAILURE, EXIT_OK, EXIT_SPEC
from .summary import aligned, summary


def cmd_list(args: argparse.Namespace) -> int:
    from ..frontend.library import read_library
    from ..frontend.lookup import library_root

    if args.blocks:
        blocks = [("block", "parameters (bare: required)", "description"), *block_rows()]
        for line in aligned(blocks, right=set()):
            print(line if len(line) <= args.width else line[: args.width - 3] + "...")
        return EXIT_OK

    # a FOLDER that is no folder is a pattern over the library's names: netc list 'resnet*'
    pattern = args.folder if args.folder and not os.path.isdir(args.folder) else None
    folder = args.folder if args.folder and pattern is None else library_root()
    entries = read_library(folder, names=folder != args.folder, match=pattern)
    if not entries:
        found = f"no library spec matches '{one_line(pattern)}'" if pattern else "no specs found"
        print(f"netc: {found} under {one_line(folder)}", file=sys.stderr)
        return EXIT_FAILURE
    rows = [("spec", "name", "family", "params", "GMACs", "description")]
    status = EXIT_OK
    for e in entries:
        if e.graph is None:
            assert e.error is not None
            print(e.error.render(), file=sys.stderr)
            status = EXIT_SPEC
            continue
        g = e.graph
        rows.append(
            (
                one_line(e.path),
                g.name,
                g.family or "-",
                f"{g.params:,}",
                f"{g.macs / 1e9:.3f}",
                one_line(g.description),
            )
        )
    if args.json:
        data = [summary(e.graph) | {"spec": e.path} for e in entries if e.graph is not None]
        print(json.dumps(data, indent=2))
        return status
    for line in aligned(rows, right={3, 4}):
        print(line if len(line) <= args.width else line[: args.width - 3] + "...")
    return status
