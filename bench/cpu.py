"""Where the CPU goes during a measurement: CPU seconds of every process on the machine, grouped by what it
is (moto, Azurite, the local runtime, each function's workers, rclone, this process, everything else).

On a 2-core machine the copy is CPU-bound, so this is the first profile to read: which process spent the
cores, and how much was left to anyone else's work."""

from __future__ import annotations

import os
import resource
from pathlib import Path

TICK = os.sysconf("SC_CLK_TCK")


def _group(pid: int, cmdline: str) -> str:
    if pid == os.getpid():
        return "bench (in-process ceiling)"
    if "moto.server" in cmdline:
        return "moto"
    if "azurite" in cmdline:
        return "azurite"
    if "azs3copy.local.runtime" in cmdline:
        return "local runtime"
    if "azs3copy.local.worker" in cmdline:
        parts = cmdline.split()
        index = parts.index("azs3copy.local.worker") if "azs3copy.local.worker" in parts else -1
        return f"fn {Path(parts[index + 1]).name}" if 0 <= index < len(parts) - 1 else "fn ?"
    if "rclone" in cmdline:
        return "rclone"
    return "other processes"


def _snapshot() -> dict[int, tuple[str, float]]:
    found: dict[int, tuple[str, float]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        fields = stat.rsplit(")", 1)[1].split()
        seconds = (int(fields[11]) + int(fields[12])) / TICK  # utime + stime
        found[int(entry.name)] = (_group(int(entry.name), cmdline), seconds)
    return found


class CpuSampler:
    """CPU seconds by group between start() and stop(); children that exit in between (rclone) are counted
    through this process's RUSAGE_CHILDREN."""

    def start(self) -> None:
        self.before = _snapshot()
        usage = resource.getrusage(resource.RUSAGE_CHILDREN)
        self.children_before = usage.ru_utime + usage.ru_stime

    def stop(self) -> dict[str, float]:
        after = _snapshot()
        groups: dict[str, float] = {}
        for pid, (group, seconds) in after.items():
            spent = seconds - self.before.get(pid, (group, 0.0))[1]
            if spent > 0:
                groups[group] = groups.get(group, 0.0) + spent
        usage = resource.getrusage(resource.RUSAGE_CHILDREN)
        reaped = usage.ru_utime + usage.ru_stime - self.children_before
        if reaped > 0.05:
            groups["rclone"] = groups.get("rclone", 0.0) + reaped
        return {group: round(seconds, 1) for group, seconds in sorted(groups.items(), key=lambda kv: -kv[1])}
