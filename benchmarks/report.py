"""docs/performance.md from benchmarks/results.json: the machine, a table per section, the notes.

The prose lives in notes.md beside this file (an intro with the machine's fields, then the notes
after ``<!-- tables -->``); this module writes the figures of each row and puts them together.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
NOTES = Path(__file__).resolve().parent / "notes.md"
Row = dict[str, Any]


def _notes() -> tuple[str, str]:
    """notes.md's intro (a format string) and its closing notes, its leading comment dropped."""
    text = NOTES.read_text()
    text = text[text.index("-->") + 3 :].lstrip("\n")
    intro, notes = text.split("<!-- tables -->")
    return intro.rstrip() + "\n", notes.strip() + "\n"


DOC = ROOT / "docs" / "performance.md"


def merged(
    old: dict[str, Any], rows: list[Row], sections: list[str], info: dict[str, Any]
) -> dict[str, Any]:
    """An earlier run's results with some sections measured again: a new row replaces the old
    row of the same name, a row with no old one follows the last row of its section."""
    fresh = {(r["section"], r["what"]): r for r in rows}
    merged = [fresh.pop((r["section"], r["what"]), r) for r in old["rows"]]
    for r in fresh.values():
        last = max((k for k, m in enumerate(merged) if m["section"] == r["section"]), default=-1)
        merged.insert(last + 1 if last >= 0 else len(merged), r)
    machine = dict(old["machine"])
    again = {"sections": sections, "date": info["date"], "seconds": info["seconds"]}
    # an earlier re-measurement of no other section is superseded by this one
    earlier = [a for a in machine.get("measured_again", []) if not {*a["sections"]} <= {*sections}]
    machine["measured_again"] = [*earlier, again]
    return {**old, "machine": machine, "rows": merged}  # (other machines' runs kept)


def with_other(data: dict[str, Any], path: str) -> dict[str, Any]:
    """``data`` with the run in ``path`` (another machine's results) among its other machines,
    in place of an earlier run on the same CPU with as many cores."""
    other = json.loads(Path(path).read_text())

    def key(run: dict[str, Any]) -> tuple[str, int]:
        return run["machine"]["cpu"], run["machine"]["cores"]

    kept = [o for o in data.get("other_machines", []) if key(o) != key(other)]
    return {**data, "other_machines": [*kept, {"machine": other["machine"], "rows": other["rows"]}]}


def _figure(r: Row) -> str:
    if r["unit"] == "bool":
        return "yes" if r["value"] == 1.0 else "no"
    if r["unit"] == "s":
        return f"{r['value']:.2f} s"
    if r["unit"] == "faults":
        return f"{r['value']:,.0f}"
    if r["unit"] == "GFLOP/s":
        return f"{r['value']:.0f} GFLOP/s"
    return f"{r['value']:.3f}"


def _detail(r: Row) -> str:
    """The row's supporting figures: the control, the op count, the fit, the split of time."""
    parts = []
    if "control_tv_over_tv" in r and "lowering_alone" not in r:
        parts.append(f"control (torchvision / torchvision) {r['control_tv_over_tv']:.3f}")
    if "parents" in r:
        parts.append(_heap_detail(r))
    elif "processes" in r and "netc_inference_kept_s" in r:
        parts += _kept_detail(r)
    elif "processes" in r:
        spread = r["spread"]
        placed = f" x {r['placements']} placements" if r.get("placements", 1) > 1 else ""
        parts.append(
            f"median of per-round ratios {r['paired']:.3f} (control {r['paired_control']:.3f}); "
            f"forward times over {r['processes']} processes{placed}: torchvision "
            f"{spread['tv'][0] * 1000:.0f}-{spread['tv'][1] * 1000:.0f} ms, netc "
            f"{spread['netc'][0] * 1000:.0f}-{spread['netc'][1] * 1000:.0f} ms, control "
            f"{spread['tv2'][0] * 1000:.0f}-{spread['tv2'][1] * 1000:.0f} ms"
        )
        rounds_le = (
            f" (netc's at most torchvision's with {r['fault_rounds'][0]} of "
            f"{r['fault_rounds'][1]} parents, the control's with "
            f"{r['control_fault_rounds'][0]})"
            if "fault_rounds" in r
            else ""
        )
        parts.append(
            f"page faults per forward: torchvision {r['tv_faults']:,.0f}, "
            f"netc {r['netc_faults']:,.0f}{rounds_le}; peak resident memory of the process: "
            "torchvision "
            f"{r['tv_peak_mib']:,.0f} MiB, netc {r['netc_peak_mib']:,.0f} MiB, of which the "
            f"forwards added {r['tv_forward_mib']:,.0f} and {r['netc_forward_mib']:,.0f} MiB "
            f"(the analysis: {r['analysis_mib']:,.0f} MiB of activations at once)"
        )
    elif "tv_faults" in r:
        parts.append(
            f"page faults per forward: torchvision {r['tv_faults']:,.0f}, "
            f"netc {r['netc_faults']:,.0f}; resident memory a forward adds at its peak: "
            f"torchvision {r['tv_peak_mib']:,.0f} MiB, netc {r['netc_peak_mib']:,.0f} MiB"
        )
    names = {"ort": "onnxruntime", "torch": "torch", "netc": "netc's", "dynamo": "dynamo's"}
    for a, b in (("ort", "torch"), ("netc", "dynamo")):
        if f"{a}_faults" in r and f"{b}_faults" in r:
            parts.append(
                f"page faults per run: {names[a]} {r[f'{a}_faults']:,.0f}, "
                f"{names[b]} {r[f'{b}_faults']:,.0f}; resident memory a run adds at its peak: "
                f"{names[a]} {r[f'{a}_peak_mib']:,.0f} MiB, "
                f"{names[b]} {r[f'{b}_peak_mib']:,.0f} MiB"
            )
    if "beside" in r:
        parts.append(f"on core {r['core']}, up to {r['beside']} rows at a time")
    if "ops" in r:
        parts.append(f"{r['ops']} aten ops")
    if "export_s" in r:
        parts.append(f"export {r['export_s']:.2f} s, validation {r['validate_s']:.2f} s")
    if "gflops" in r:
        parts.append(f"{r['gflops']:.0f} GFLOP/s")
    if "seconds" in r and isinstance(r["seconds"], dict):
        times = ", ".join(f"{k}: {v * 1000:.0f} ms" for k, v in r["seconds"].items())
        parts.append(times)
    if "tv_s" in r and "netc_s" in r:
        parts.append(f"torchvision {r['tv_s'] * 1000:.0f} ms, netc {r['netc_s'] * 1000:.0f} ms")
    if "kept_faults" in r:
        parts.append(
            f"resident memory a forward adds at its peak: torchvision {r['tv_peak_mib']:,.0f} "
            f"MiB, netc {r['netc_peak_mib']:,.0f} MiB; "
            f"page faults per forward {r['compiled_faults']:,.0f}; inside keep_freed_memory "
            f"{r['kept_s'] * 1000:.0f} ms ({r['tv_s'] / r['kept_s']:.2f}x torchvision), "
            f"{r['kept_faults']:,.0f} faults"
            + (f"; torch.compile took {r['compile_s']:.0f} s" if "compile_s" in r else "")
            + ("; batch dimension dynamic" if r.get("dynamic_batch") else "")
        )
    if "predicted_mib" in r:
        parts.append(
            f"analysis {r['predicted_mib']:.1f} MiB, measured {r['measured_mib']:.1f} MiB; "
            f"every output kept {r['all_outputs_mib']:.1f} MiB"
        )
    return "; ".join(parts)


def _heap_detail(r: Row) -> str:
    spread = {k: f"{a:,.0f}-{b:,.0f}" for k, (a, b) in r["fault_spread"].items()}
    return (
        f"over {r['parents']} parents: torchvision median {r['tv_faults']:,.0f} "
        f"({spread['tv']}), netc {r['netc_faults']:,.0f} ({spread['netc']}), torchvision "
        f"with one gc.collect() after its build {r['tv_gc_faults']:,.0f} ({spread['tv_gc']}); "
        f"at most torchvision's in the same parent: netc in {r['fault_rounds'][0]}, "
        f"torchvision after gc.collect() in {r['control_fault_rounds'][0]}"
    )


def _kept_detail(r: Row) -> list[str]:
    """The supporting figures of an eager inference row (see kept_memory)."""
    kinds = {
        "tv": "torchvision",
        "netc_inference_kept": "netc kept",
        "netc_inference": "netc",
        "tv_kept": "torchvision kept",
    }
    return [
        f"netc's inference module with the default allocator / torchvision "
        f"{r['lowering_alone']:.3f}; torchvision with freed memory kept / torchvision "
        f"{r['tv_kept_over_tv']:.3f}; control (torchvision / torchvision) "
        f"{r['control_tv_over_tv']:.3f}",
        "page faults per forward: "
        + ", ".join(f"{v} {r[k + '_faults']:,.0f}" for k, v in kinds.items()),
        "peak resident memory of the process: "
        + ", ".join(f"{v} {r[k + '_peak_mib']:,.0f} MiB" for k, v in kinds.items()),
        "forward time: " + ", ".join(f"{v} {r[k + '_s'] * 1000:.0f} ms" for k, v in kinds.items()),
        f"{r['processes']} processes",
    ]


# the --only names, as the note on a partial run says them
SECTION_WORDS = {
    "zero": "zero overhead in one process",
    "alone": "zero overhead in separate processes",
    "pinned": "zero overhead in separate processes on one pinned thread",
    "heaps": "page faults over many parents",
    "front": "front end",
    "deploy": "deployment",
    "inference": "inference lowering (eager)",
    "compiled": "inference lowering under torch.compile",
    "modern": "modern families",
    "branching": "branching families",
    "transformers": "transformers",
}

SECTION_TITLES = {
    "zero_overhead": "Zero overhead: netc's module against torchvision's",
    "front_end": "Front end: checking and building",
    "deployment": "Deployment: ONNX export and onnxruntime",
    "inference": "Inference lowering",
    "modern": "Modern families: MobileNet, EfficientNet, RegNet, ConvNeXt",
    "branching": "Branching families: DenseNet, GoogLeNet, ShuffleNetV2; the U-Net's memory",
    "transformers": "Transformers: ViT-B/16, Swin-T",
}


def _other_machine(other: dict[str, Any]) -> list[str]:
    """The table of a run on another machine (--other-machine), its machine first."""
    m = other["machine"]
    return [
        f"## On another machine: {m['cpu']}, {m['cores']} cores",
        "",
        f"Measured on {m['date']} ({m['seconds']:.0f} s) with torch {m['torch']}, torchvision "
        f"{m.get('torchvision', 'unrecorded')}, Python {m['python']}.",
        "",
        "| measured | result | details |",
        "|---|---:|---|",
        *(f"| {r['what']} | {_figure(r)} | {_detail(r)} |" for r in other["rows"]),
        "",
    ]


def write_doc(data: dict[str, Any], path: Path) -> None:
    """docs/performance.md from a results.json: the machine, a table per section, notes."""
    from compiler.atomic import write_text

    intro, notes = _notes()
    lines = [intro.format(**data["machine"])]
    for again in data["machine"].get("measured_again", []):
        lines.insert(
            1,
            f"Measured again on {again['date']} ({again['seconds']:.0f} s): the rows of "
            f"{', '.join(SECTION_WORDS.get(k, k) for k in again['sections'])}.\n",
        )
    for section, title in SECTION_TITLES.items():
        rows = [r for r in data["rows"] if r["section"] == section]
        if not rows:
            continue
        lines += [f"## {title}", "", "| measured | result | details |", "|---|---:|---|"]
        lines += [f"| {r['what']} | {_figure(r)} | {_detail(r)} |" for r in rows]
        lines.append("")
    for other in data.get("other_machines", []):
        lines += _other_machine(other)
    lines.append(notes)
    write_text(str(path), "\n".join(lines))
