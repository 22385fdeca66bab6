"""The ``netc`` command line.

Commands:
  compile   check a spec, build its torch module, print the per-stage table (--onnx: export too)
  check     validate specs without building anything (never imports torch)
  export    export ONNX, checked and compared with PyTorch in onnxruntime before it is written
  diagram   draw a network (stages, blocks or ops) or a block type with Graphviz
  emit      write the network as a standalone PyTorch source file (imports only torch)
  list      the networks of a spec folder with their counts
  ir        print the expanded IR, one node per line
  schema    write the JSON Schema of the spec language (editor completion and checking)
  diff      compare two specs as networks: stages, counts, nodes, checkpoint compatibility
  gradflow  plot each weight layer's gradient norm for one or more specs (matplotlib)

Exit status: 0 success, 2 a spec error (located messages on stderr), 1 any other failure.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
from collections.abc import Callable, Sequence
from typing import Any

from .. import __version__
from ..errors import ON_THE_COMMAND_LINE, OVERRIDES_SHOWN_AS, SpecError, one_line
from ..frontend.access import SEARCH_PATH
from ..frontend.load import Limits, load_spec
from ..frontend.lookup import spec_path
from ..ir.graph import Graph, dump
from ..ops import OPS, plugins
from .blocks import check_line, is_block_path
from .cli_support import (
    EXIT_FAILURE,
    EXIT_INTERRUPTED,
    EXIT_OK,
    EXIT_SPEC,
    EXIT_TERMINATED,
    Shown,
    Terminated,
    at_least,
    cannot_write,
    on_sigterm,
    positive,
    search_path,
    writable,
    write_output,
)
from .listing import cmd_list
from .summary import outputs_text, summary, table

# shown under each command's --help
EXAMPLES = {
    "compile": """examples:
  netc compile specs/resnet50.yaml
  netc compile specs/resnet50.yaml --set stages.layer3.repeat=23 --json
  netc compile specs/resnet18.yaml --weights resnet18.pth --onnx resnet18.onnx
  netc compile resnet50 --weights torchvision          # torchvision's published weights
  netc compile resnet50 --set params.num_classes=10 --weights torchvision --partial""",
    "export": """examples:
  netc export specs/resnet50.yaml -o resnet50.onnx
  netc export specs/resnet18.yaml -o r18.onnx --exporter netc --report r18.json""",
    "check": """examples:
  netc check specs/resnet50.yaml
  netc check vit_h_14 --table                # the stage table of compile, nothing built
  netc check -q specs/*.yaml specs/cifar/*.yaml""",
    "list": """examples:
  netc list
  netc list 'resnet*'                  # the library specs whose name matches
  netc list specs/cifar --json""",
    "diagram": """examples:
  netc diagram specs/resnet50.yaml -o resnet50.svg
  netc diagram specs/resnet50.yaml -o blocks.png --detail blocks
  netc diagram specs/blocks/bottleneck.yaml -o bottleneck.png --set stride=2
  netc diagram specs/resnet50.yaml --block bottleneck -o bottleneck.pdf""",
    "emit": """examples:
  netc emit resnet50 -o resnet50.py
  netc emit specs/resnet18.yaml -o backbone.py --set 'outputs=[layer2, layer3, layer4]'""",
    "ir": """examples:
  netc ir specs/cifar/resnet20.yaml
  netc ir specs/resnet18.yaml --set stem.conv1.stride=1""",
    "diff": """examples:
  netc diff resnet50 resnet101
  netc diff resnet50 --set params.num_classes=10 --json
  netc diff resnet50 my_resnet50_variant.yaml""",
    "gradflow": """examples:
  netc gradflow cifar/plain56 cifar/resnet56 -o gradflow.png
  netc gradflow paper/plain34 resnet34 --steps 20 -o gradflow.png --json""",
    "schema": """examples:
  netc schema -o netc.schema.json
  # then, first line of a spec: # yaml-language-server: $schema=netc.schema.json""",
}


def _add_spec_options(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a spec value, e.g. --set stages.layer3.repeat=23 "
        "(repeatable; the value is YAML)",
    )
    p.add_argument(
        "--path",
        dest="search_path",
        action="append",
        default=[],
        metavar="DIR",
        help="a folder whose specs 'extends:' may read, besides the spec's own folder and the "
        f"library (repeatable; added before {SEARCH_PATH})",
    )
    p.add_argument(
        "--max-nodes",
        type=at_least(1),
        default=Limits.max_nodes,
        help=f"refuse networks with more IR nodes (default {Limits.max_nodes:,})",
    )
    p.add_argument(
        "--max-params",
        type=at_least(1),
        default=Limits.max_params,
        help=f"refuse networks with more parameters (default {Limits.max_params:,})",
    )
    p.add_argument(
        "--max-activation-mb",
        type=at_least(1),
        default=Limits.max_activation_bytes >> 20,
        help="refuse networks whose activations for one sample exceed this "
        f"(default {Limits.max_activation_bytes >> 20:,} MiB)",
    )


def _add_build_options(p: argparse.ArgumentParser) -> None:
    """Options of the commands that build a module (compile, export)."""
    p.add_argument("--seed", type=int, default=None, help="seed for reproducible weights")
    p.add_argument(
        "--weights",
        metavar="FILE.pth|torchvision[:SET]",
        default=None,
        help="load a torchvision/timm-format state_dict (read with weights_only=True), or the "
        "weights torchvision publishes for the model: 'torchvision' (its default) or "
        "'torchvision:IMAGENET1K_V1', from torch.hub's cache (TORCH_HOME) or downloaded there once",
    )
    p.add_argument(
        "--part-weights",
        metavar="PART=FILE.pth|torchvision[:SET]",
        action="append",
        default=[],
        help="load a checkpoint of a part's own network into that part (the spec's parts:), as "
        "torchvision's weights_backbone: --part-weights backbone=torchvision gives a "
        "segmentation network's ResNet-50 its ImageNet weights (repeatable)",
    )
    p.add_argument(
        "--partial",
        action="store_true",
        help="with --weights or --part-weights: load every entry whose name and shape match, "
        "keep the rest as initialised, and report both (a new head, added layers)",
    )


def _limits(args: argparse.Namespace) -> Limits:
    return Limits(
        max_nodes=args.max_nodes,
        max_params=args.max_params,
        max_activation_bytes=args.max_activation_mb << 20,
    )


def _load(args: argparse.Namespace, path: str) -> Graph:
    published = False  # published weights: the spec's settings for them (torchvision's builder)
    if getattr(args, "weights", None) is not None:
        from ..lowering.pretrained import is_named  # imports torch: only where weights are loaded

        published = is_named(args.weights)
    return load_spec(path, args.overrides, _limits(args), published_weights=published)


def cmd_check(args: argparse.Namespace) -> int:
    status = EXIT_OK
    for path in args.specs:
        try:
            if is_block_path(spec_path(path)):  # one block, as the diagrams draw it
                line = check_line(spec_path(path), path, args.overrides)
                if not args.quiet:
                    print(line)
                continue
            g = _load(args, path)
            if g.origin is not None and g.origin.published_weights:
                # what --weights torchvision builds is checked too
                load_spec(path, args.overrides, _limits(args), published_weights=True)
        except SpecError as e:
            print(e.render(), file=sys.stderr)
            status = EXIT_SPEC
            continue
        if args.table:
            print(table(g))
        elif not args.quiet:
            print(
                f"ok: {one_line(path)} ({g.name}: {g.params:,} params, "
                f"{g.macs:,} MACs, {outputs_text(g)})"
            )
    return status


def _check_parser(sub: Any) -> None:
    """The `netc check` command line."""
    p = _command(
        sub,
        "check",
        help="validate specs without building anything (no torch)",
        description="Validate each SPEC: all errors at once, exit 2 if any. A block type file "
        "(netc check blocks/bottleneck --set width=64) is checked as one block; --set gives "
        "its parameters (required ones default to 64).",
    )
    p.add_argument("specs", nargs="+", metavar="SPEC")
    p.add_argument("-q", "--quiet", action="store_true", help="print only errors")
    p.add_argument(
        "--table",
        action="store_true",
        help="print each network's per-stage table, as compile does, without building it",
    )
    _add_spec_options(p)
    p.set_defaults(func=cmd_check)


def cmd_compile(args: argparse.Namespace) -> int:
    graph = _load(args, args.spec)
    if args.onnx and not writable(args.onnx, args.report):
        return EXIT_FAILURE
    from .. import compile as build
    from ..lowering.weights import WeightsError

    try:
        module = build(
            graph,
            seed=args.seed,
            zero_init_residual=args.zero_init_residual or None,
            weights=args.weights,
            partial=args.partial,
            part_weights=_part_weights(args),
        )
    except WeightsError as e:
        print(e, file=sys.stderr)
        return EXIT_FAILURE
    built = sum(p.numel() for p in module.parameters())
    if built != graph.params:  # the analysis and the module must agree; never expected
        print(
            f"internal error: module has {built:,} params, analysis says {graph.params:,}",
            file=sys.stderr,
        )
        return EXIT_FAILURE
    loaded = module.meta.get("weights")
    if args.json:
        print(json.dumps(summary(graph) | ({"weights": loaded} if loaded else {}), indent=2))
    else:
        print(table(graph))
        if loaded:
            print(_weights_text(loaded, graph))
        for part in module.meta.get("part_weights", {}).values():
            print(_weights_text(part, graph))
        if args.print_module:
            print(module.code)
    if args.onnx:
        args.quiet = args.json
        return _export(args, graph, args.onnx)
    return EXIT_OK


def _compile_parser(sub: Any) -> None:
    """The `netc compile` command line."""
    p = _command(
        sub,
        "compile",
        help="check a spec, build its module, print a per-stage table",
        description="Check SPEC, build the torch module, and print params, MACs "
        "and output shape per stage.",
    )
    p.add_argument("spec", metavar="SPEC", help="network spec (YAML)")
    p.add_argument("--json", action="store_true", help="print one JSON object instead")
    p.add_argument(
        "--zero-init-residual",
        action="store_true",
        help="zero the last BN of each residual branch (torchvision's option)",
    )
    p.add_argument(
        "--print-module", action="store_true", help="also print the generated forward code"
    )
    _add_build_options(p)
    p.add_argument("--onnx", metavar="FILE.onnx", help="also export (and validate) ONNX")
    _add_export_options(p)
    _add_spec_options(p)
    p.set_defaults(func=cmd_compile)


def _part_weights(args: argparse.Namespace) -> dict[str, str] | None:
    """``--part-weights backbone=torchvision`` as {part: source}; a malformed one exits 2."""
    out: dict[str, str] = {}
    for item in args.part_weights:
        part, sep, source = item.partition("=")
        if not sep or not part or not source:
            print(
                f"netc: error: --part-weights {one_line(item)!r} must look like "
                "PART=FILE.pth or PART=torchvision",
                file=sys.stderr,
            )
            raise SystemExit(2)  # a usage error, as argparse's
        out[part.strip()] = source.strip()
    return out or None


def _weights_text(loaded: dict[str, Any], graph: Graph) -> str:
    """The load's report for the terminal, each entry the spec has located at its node."""
    from ..lowering.weights import where

    differs, absent, unused = loaded["shape_differs"], loaded["absent"], loaded["unused"]
    total = loaded["loaded"] + len(differs) + len(absent)
    lines = [f"weights: {loaded['loaded']:,} of {total:,} entries loaded from {loaded['source']}"]
    lines += [
        f"  kept as initialised, shape differs: {k}: checkpoint {v['checkpoint']}, "
        f"spec {v['spec']}{where(graph, k)}"
        for k, v in differs.items()
    ]
    lines += [f"  kept as initialised, not in the checkpoint: {k}{where(graph, k)}" for k in absent]
    lines += [f"  unused from the checkpoint: {one_line(k)}" for k in unused]
    pre = loaded.get("preprocess")
    if pre:
        lines.append(
            "  preprocessing: " + ", ".join(f"{k} {v}" for k, v in pre.items() if k != "weights")
        )
    return "\n".join(lines)


def _list_parser(sub: Any) -> None:
    """The `netc list` command line."""
    p = _command(
        sub,
        "list",
        help="list the networks of the spec library with their counts",
        description="Load every network spec under FOLDER (default: netc's own library, "
        "whose names every command accepts in place of a file) and print name, family, params, "
        "GMACs and description.",
    )
    p.add_argument(
        "folder",
        nargs="?",
        default=None,
        metavar="FOLDER|PATTERN",
        help="a folder of specs (default: the library shipped with netc, listed by name), or a "
        "pattern over the library's names such as 'resnet*' or 'cifar/*'",
    )
    p.add_argument("--json", action="store_true", help="print a JSON list instead")
    p.add_argument(
        "--blocks",
        action="store_true",
        help="list the library's block types and their parameters instead (netc check "
        "blocks/NAME --set width=64 checks one)",
    )
    p.add_argument("--width", type=int, default=160, help="cut lines to this many characters")
    p.set_defaults(func=cmd_list)


def _diagram_of(args: argparse.Namespace) -> Any:
    """The graphviz diagram a `netc diagram` call asks for (a block file, --block or a network)."""
    from exporters import graphviz as gv

    from ..errors import UNKNOWN, suffix_hint
    from ..frontend.block_network import block_network
    from ..frontend.lookup import is_block_file, spec_path
    from ..frontend.source import load_file

    data = load_file(spec_path(args.spec)).data
    if is_block_file(data):
        graph, block = block_network(spec_path(args.spec), args.overrides)
        return gv.block_diagram(graph, block, title=f"{data['block']} block")
    graph = _load(args, args.spec)
    if args.block:
        stages = [s for s in graph.stages if s.block_type == args.block]
        nested = [b for b, t in graph.nested_blocks.items() if t == args.block]
        if not stages and nested:  # a type only ever inside other blocks (DLA's leaves)
            block = nested[0]
            return gv.block_diagram(graph, block, title=f"{args.block} block ({block})")
        if not stages:
            used = {s.block_type for s in graph.stages if s.block_type}
            used |= set(graph.nested_blocks.values())
            raise SpecError.at(
                graph.origin.name_loc if graph.origin else UNKNOWN,
                f"no stage of {graph.name} uses block "
                f"type '{args.block}'{suffix_hint(args.block, used)}",
            )
        blocks = stages[0].blocks
        block = blocks[1] if len(blocks) > 1 else blocks[0]  # an identity block, as in the paper
        return gv.block_diagram(graph, block, title=f"{args.block} block ({block})")
    return gv.network_diagram(graph, args.detail, args.max_blocks)


def cmd_diagram(args: argparse.Namespace) -> int:
    from exporters.graphviz import RenderError, render

    dot = _diagram_of(args)
    if not writable(args.output):
        return EXIT_FAILURE
    try:
        render(dot, args.output, timeout=args.dot_timeout)
    except RenderError as e:
        print(f"netc: error: {e}", file=sys.stderr)
        return EXIT_FAILURE
    except OSError as e:
        return cannot_write(args.output, e)
    if not args.quiet:
        print(f"wrote {args.output}")
    return EXIT_OK


def _diagram_parser(sub: Any) -> None:
    """The `netc diagram` command line."""
    p = _command(
        sub,
        "diagram",
        help="draw a network or a block type with Graphviz",
        description="Draw SPEC (a network, or a block type file such as "
        "specs/blocks/bottleneck.yaml) to OUT; the format comes from the extension "
        "(svg, png, pdf need Graphviz's dot; .dot works without it). For a block file, "
        "--set sets block parameters (e.g. --set stride=2 shows a projection).",
    )
    p.add_argument("spec", metavar="SPEC")
    p.add_argument(
        "-o", "--output", required=True, metavar="OUT", help="output file: .svg, .png, .pdf or .dot"
    )
    p.add_argument(
        "--detail",
        choices=("stages", "blocks", "ops"),
        default="stages",
        help="network diagrams: one node per stage, per block, or per op",
    )
    p.add_argument("--block", metavar="TYPE", help="draw this block type as the network uses it")
    p.add_argument(
        "--max-blocks",
        type=at_least(1),
        default=6,
        help="--detail blocks: show at most this many blocks per stage (default 6)",
    )
    from exporters.options import DOT_TIMEOUT_S

    p.add_argument(
        "--dot-timeout",
        type=positive,
        default=DOT_TIMEOUT_S,
        metavar="SECONDS",
        help=f"stop Graphviz's layout after this long (default {DOT_TIMEOUT_S:g})",
    )
    p.add_argument("-q", "--quiet", action="store_true", help="print nothing on success")
    _add_spec_options(p)
    p.set_defaults(func=cmd_diagram)


def _export(args: argparse.Namespace, graph: Graph, output: str) -> int:
    """Build, export and validate; prints the report, writes --report; exit status."""
    from exporters.onnx import ExportError, export, unexportable

    from .. import compile as build
    from ..lowering.folding import fold_module
    from ..lowering.weights import WeightsError

    refused = unexportable(graph)  # before the module is built
    if refused:
        print("\n".join(refused), file=sys.stderr)
        return EXIT_SPEC
    try:
        module = build(
            graph,
            seed=args.seed,
            weights=args.weights,
            partial=args.partial,
            part_weights=_part_weights(args),
        ).eval()
    except WeightsError as e:
        print(e, file=sys.stderr)
        return EXIT_FAILURE
    target, target_graph = (module, graph) if args.no_fold else fold_module(module, graph)
    if not args.quiet:
        print(f"exporting {graph.name} to {output} ...", file=sys.stderr)
    try:
        report = export(
            target,
            target_graph,
            output,
            opset=args.opset,
            batch=args.batch,
            exporter=args.exporter,
            validate=not args.no_validate,
            folded=not args.no_fold,
            preprocess=(module.meta.get("weights") or {}).get("preprocess"),
        )
    except ExportError as e:
        print(f"netc: error: {e}; {output} was not written", file=sys.stderr)
        if e.report is not None:
            print(e.report.text(), file=sys.stderr)
            if args.report:
                _write_report(e.report, args.report)
        return EXIT_FAILURE
    except OSError as e:  # the output became unwritable after the check, or the disk is full
        return cannot_write(output, e)
    if not args.quiet:
        print(report.text())
    if args.report:
        return _write_report(report, args.report)
    return EXIT_OK


def _write_report(report: Any, path: str) -> int:
    """Write --report; the exit status."""
    from exporters.onnx import write_report

    try:
        write_report(report, path)
    except OSError as e:
        return cannot_write(path, e)
    return EXIT_OK


def cmd_export(args: argparse.Namespace) -> int:
    graph = _load(args, args.spec)
    if not writable(args.output, args.report):
        return EXIT_FAILURE
    return _export(args, graph, args.output)


def _export_parser(sub: Any) -> None:
    """The `netc export` command line."""
    p = _command(
        sub,
        "export",
        help="export ONNX, validated in onnxruntime",
        description="Export SPEC to ONNX (eval mode, BatchNorm folded, dynamic batch, one file), "
        "check it and compare onnxruntime with PyTorch at batches 1, 2, 5; the file is written "
        "only if it passes.",
    )
    p.add_argument("spec", metavar="SPEC")
    p.add_argument("-o", "--output", required=True, metavar="FILE.onnx")
    _add_build_options(p)
    p.add_argument("-q", "--quiet", action="store_true", help="print only errors")
    _add_export_options(p)
    _add_spec_options(p)
    p.set_defaults(func=cmd_export)


def _add_export_options(p: argparse.ArgumentParser) -> None:
    from exporters.options import DEFAULT_EXPORTER, DEFAULT_OPSET, EXPORTERS

    p.add_argument(
        "--opset",
        type=at_least(1),
        default=DEFAULT_OPSET,
        help=f"ONNX opset (default {DEFAULT_OPSET})",
    )
    p.add_argument(
        "--batch", type=at_least(1), default=2, help="batch of the example input (default 2)"
    )
    p.add_argument(
        "--exporter",
        choices=EXPORTERS,
        default=DEFAULT_EXPORTER,
        help="netc (ONNX written from the IR, fastest), or dynamo or torchscript (torch.onnx); "
        f"default {DEFAULT_EXPORTER}",
    )
    p.add_argument("--report", metavar="FILE.json", help="also write the report as JSON")
    p.add_argument(
        "--no-validate",
        action="store_true",
        help="skip the onnx checker and onnxruntime comparison",
    )
    p.add_argument(
        "--no-fold",
        action="store_true",
        help="keep BatchNorm nodes instead of folding them into the convs",
    )


def cmd_emit(args: argparse.Namespace) -> int:
    from .emit import EmitError, emit

    graph = _load(args, args.spec)
    try:
        source = emit(graph)
    except EmitError as e:
        print(f"netc: error: cannot write {graph.name} as source: {e}", file=sys.stderr)
        return EXIT_FAILURE
    return write_output(args.output, source, args.quiet)


def _emit_parser(sub: Any) -> None:
    """The `netc emit` command line."""
    p = _command(
        sub,
        "emit",
        help="write the network as standalone PyTorch source",
        description="Write SPEC as one Python file that imports only torch: a class per block "
        "type, one for the network (constructible with no arguments), and build(seed=...), which "
        "gives the weights `netc compile --seed` gives. Written atomically.",
    )
    p.add_argument("spec", metavar="SPEC")
    p.add_argument("-o", "--output", required=True, metavar="FILE.py")
    p.add_argument("-q", "--quiet", action="store_true", help="print nothing on success")
    _add_spec_options(p)
    p.set_defaults(func=cmd_emit)


def cmd_diff(args: argparse.Namespace) -> int:
    """Exit status 0 when the networks are equal, 1 when they differ, 2 on a spec error."""
    from .diff import diff

    if args.b is None and not args.overrides:
        print("netc: error: give a second spec or --set overrides to compare with", file=sys.stderr)
        return EXIT_FAILURE
    before = load_spec(args.a, [], _limits(args))
    after = _load(args, args.b or args.a)  # --set applies to B
    result = diff(before, after)
    if args.overrides:
        result.b = f"{after.name} with --set {' '.join(args.overrides)}"
    print(json.dumps(result.as_dict(), indent=2) if args.json else result.text())
    return EXIT_OK if result.equal else EXIT_FAILURE


def _diff_parser(sub: Any) -> None:
    """The `netc diff` command line."""
    p = _command(
        sub,
        "diff",
        help="compare two specs as networks",
        description="Compare A with B (or with A under --set overrides) as networks: per stage "
        "what changed (blocks, widths, strides, shortcut kinds), params / MACs / activation "
        "memory before, after and the delta, nodes added and removed by module path, and "
        "whether B loads A's checkpoint (keys that match, differ in shape, are new, are gone). "
        "Exit status 0 when they are equal, 1 when they differ, 2 on a spec error.",
    )
    p.add_argument("a", metavar="A")
    p.add_argument("b", metavar="B", nargs="?", help="default: A; --set applies to B")
    p.add_argument("--json", action="store_true", help="print one JSON object instead")
    _add_spec_options(p)
    p.set_defaults(func=cmd_diff)


def cmd_gradflow(args: argparse.Namespace) -> int:
    from .gradflow import measure, plot, table

    graphs = [_load(args, spec) for spec in args.specs]
    if not writable(args.output):
        return EXIT_FAILURE
    flows = []
    for g in graphs:
        if not g.params:
            print(
                f"netc: error: {g.name} has no weights: there is no gradient to measure",
                file=sys.stderr,
            )
            return EXIT_FAILURE
        if not args.json:
            print(f"measuring {g.name} ...", file=sys.stderr)
        flows.append(measure(g, steps=args.steps, batch=args.batch, seed=args.seed, lr=args.lr))
    try:
        plot(flows, args.output)
    except OSError as e:
        return cannot_write(args.output, e)
    except ValueError as e:  # matplotlib: a format it does not know
        print(f"netc: error: cannot write {args.output}: {e}", file=sys.stderr)
        return EXIT_FAILURE
    if args.json:
        print(json.dumps([f.as_dict() for f in flows], indent=2))
    else:
        print(table(flows))
        print(f"wrote {args.output}")
    return EXIT_OK


def _gradflow_parser(sub: Any) -> None:
    """The `netc gradflow` command line."""
    p = _command(
        sub,
        "gradflow",
        help="plot each weight layer's gradient norm for one or more specs",
        description="For each SPEC: build it (--seed), one batch of random inputs and labels, "
        "cross-entropy, one backward; the L2 norm of every conv and linear weight's gradient, "
        "input to output, plotted on one figure (relative depth, log scale) and tabled. With "
        "--steps N the networks first take N SGD steps on random batches. The same data for "
        "every spec. The format comes from the extension (png, svg, pdf).",
    )
    p.add_argument("specs", nargs="+", metavar="SPEC")
    p.add_argument("-o", "--output", required=True, metavar="FILE.png")
    p.add_argument(
        "--steps", type=at_least(0), default=0, help="SGD steps before measuring (default 0)"
    )
    p.add_argument("--batch", type=at_least(1), default=8, help="batch size (default 8)")
    p.add_argument("--seed", type=int, default=0, help="weights and data seed (default 0)")
    p.add_argument("--lr", type=positive, default=0.01, help="SGD learning rate for --steps")
    p.add_argument("--json", action="store_true", help="print the norms as JSON instead")
    _add_spec_options(p)
    p.set_defaults(func=cmd_gradflow)


def cmd_schema(args: argparse.Namespace) -> int:
    from .schema import library_schema

    text = json.dumps(library_schema(), indent=2) + "\n"
    if args.output in (None, "-"):
        print(text, end="")
        return EXIT_OK
    return write_output(args.output, text, args.quiet)


def _schema_parser(sub: Any) -> None:
    """The `netc schema` command line."""
    p = _command(
        sub,
        "schema",
        help="write the JSON Schema of the spec language, for editors",
        description="Write a JSON Schema (draft 2020-12) of network specs, generated from the op "
        "table, the spec keys, the library's block types and the shortcut kinds. With "
        "yaml-language-server (VS Code's YAML extension) put `# yaml-language-server: "
        "$schema=netc.schema.json` at the top of a spec: op names and attributes complete, "
        "with their docs, and unknown keys and wrong types are flagged as you type.",
    )
    p.add_argument("-o", "--output", metavar="FILE.json", help="write here (default: stdout)")
    p.add_argument("-q", "--quiet", action="store_true", help="print nothing on success")
    p.set_defaults(func=cmd_schema)


def cmd_ir(args: argparse.Namespace) -> int:
    print(dump(_load(args, args.spec)), end="")
    return EXIT_OK


def _ir_parser(sub: Any) -> None:
    """The `netc ir` command line."""
    p = _command(
        sub,
        "ir",
        help="print the expanded IR graph, one node per line",
        description="Print the IR of SPEC: every node with its inputs, "
        "attributes and output shape.",
    )
    p.add_argument("spec", metavar="SPEC")
    _add_spec_options(p)
    p.set_defaults(func=cmd_ir)


def _command(sub: Any, name: str, **kw: Any) -> argparse.ArgumentParser:
    """A subcommand whose --help ends with its examples."""
    parser: argparse.ArgumentParser = sub.add_parser(
        name, epilog=EXAMPLES[name], formatter_class=argparse.RawDescriptionHelpFormatter, **kw
    )
    parser.add_argument(
        "--plugin",
        dest="plugins",
        action="append",
        default=[],
        metavar="MODULE",
        help="enable the ops a Python module declares (its NETC_OPS), e.g. --plugin "
        f"mypkg.netc_ops (repeatable; also {plugins.ENVIRONMENT}=mod1,mod2). A spec cannot "
        "enable one",
    )
    return parser


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="netc",
        description="Compile YAML network specs to PyTorch modules.",
        epilog="commands: compile, check, export, diagram, emit, list, ir, schema, diff, gradflow "
        "(netc "
        "COMMAND "
        "--help shows examples). Spec errors exit with status 2; the spec language is in "
        "docs/guide/language.md.",
    )
    parser.add_argument("--version", action="version", version=f"netc {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for add in (
        _compile_parser,
        _export_parser,
        _check_parser,
        _list_parser,
        _diagram_parser,
        _emit_parser,
        _ir_parser,
        _diff_parser,
        _gradflow_parser,
        _schema_parser,
    ):
        add(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    # --set's errors point into the command line (for this call only: main() may run in-process)
    shown_as = OVERRIDES_SHOWN_AS.set(ON_THE_COMMAND_LINE)
    try:
        return _main(argv)
    finally:
        OVERRIDES_SHOWN_AS.reset(shown_as)


def _main(argv: Sequence[str] | None) -> int:
    args = build_parser().parse_args(argv)
    func: Callable[[argparse.Namespace], int] = args.func
    try:
        previous: Any = signal.signal(signal.SIGTERM, on_sigterm)
        installed = True
    except ValueError:  # not the main thread (main() called from a worker): no handler there
        installed = False
    streams = sys.stdout, sys.stderr
    sys.stdout, sys.stderr = Shown(sys.stdout), Shown(sys.stderr)
    try:
        with search_path(getattr(args, "search_path", [])):
            plugins.from_environment(OPS)
            for module in args.plugins:
                plugins.enable(module, OPS)
            return func(args)
    except plugins.PluginError as e:
        print(f"netc: error: {e}", file=sys.stderr)
        return EXIT_FAILURE
    except SpecError as e:
        print(e.render(), file=sys.stderr)
        return EXIT_SPEC
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED
    except Terminated:
        return EXIT_TERMINATED
    except BrokenPipeError:  # `netc list | head`: the reader left; say nothing more
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_FAILURE
    finally:
        sys.stdout, sys.stderr = streams
        if installed:  # main() called in-process (tests): leave no handler behind
            signal.signal(signal.SIGTERM, signal.SIG_DFL if previous is None else previous)
