"""The process's resident memory from Linux's /proc/self: now, and its high-water mark."""

from __future__ import annotations


def status(field: str) -> float:
    """A /proc/self/status figure in MiB (VmRSS: resident now, VmHWM: its high-water mark)."""
    with open("/proc/self/status") as f:
        line = next(line for line in f if line.startswith(field))
    return int(line.split()[1]) / 1024


def reset_high_water_mark() -> None:
    """VmHWM back to what is resident now."""
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")
