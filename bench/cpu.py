"""Where the CPU goes during a measurement: CPU seconds of every process on the machine, grouped by what it
is (moto, Azurite, the local runtime, each function's workers, rclone, this process, everything else).

On a 2-core machine the copy is CPU-bound, so this is the first profile to read: which process spent the
cores, and how much was left to anyone else's work."""

from __future__ import annotations

import os
import resource
from pathlib import Path

TICK = os.sysconf("SC_CLK_TCK")


def _group(pid: int, ppid: int, cmdline: str, known: dict[int, str]) -> str:
    """Which measured process this is; another engineer's moto or Azurite is one of "other processes"."""
    if pid == os.getpid():
        return "bench (in-process ceiling)"
    if pid in known:
        return known[pid]
    if known.get(ppid) == "local runtime":  # a worker: python .../devenv/worker.py CODE HANDLER FD FD
        parts = cmdline.split()
        index = next((i for i, part in enumerate(parts) if part.endswith("/worker.py")), None)
        if index is None or index >= len(parts) - 1:
            return "fn ?"
        code = Path(parts[index + 1])  # the function's zip, or its directory under lambdas/
        return f"fn {code.stem if code.suffix == '.zip' else code.name}"
    if ppid == os.getpid() and "rclone" in cmdline:
        return "rclone"
    return "other processes"


def _snapshot(known: dict[int, str]) -> dict[int, tuple[str, float]]:
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
        pid = int(entry.name)
        found[pid] = (_group(pid, int(fields[1]), cmdline, known), seconds)
    return found


class CpuSampler:
    """CPU seconds by group between start() and stop(); children that exit in between (rclone) are counted
    through this process's RUSAGE_CHILDREN. `known` names the emulators' and the runtime's process ids."""

    def __init__(self, known: dict[int, str]) -> None:
        self.known = known

    def start(self) -> None:
        self.before = _snapshot(self.known)
        usage = resource.getrusage(resource.RUSAGE_CHILDREN)
        self.children_before = usage.ru_utime + usage.ru_stime

    def stop(self) -> dict[str, float]:
        after = _snapshot(self.known)
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
