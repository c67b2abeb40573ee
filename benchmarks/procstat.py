"""CPU time and page faults of processes, read from /proc (no py-spy, no perf).

``utime + stime`` of a process, in seconds; sampled before and after a run, the
difference is the CPU that process spent on the run.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

TICK = os.sysconf("SC_CLK_TCK")


@dataclass(frozen=True)
class Stat:
    pid: int
    ppid: int
    cpu_s: float  # utime + stime
    minflt: int
    majflt: int


def read_stat(pid: int) -> Stat | None:
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # The command name (field 2) may contain spaces and parentheses: split after the last ')'.
    fields = raw[raw.rindex(")") + 2 :].split()
    # fields[0] is field 3 (state): field N of proc(5) is fields[N - 3].
    return Stat(
        pid=pid,
        ppid=int(fields[1]),
        cpu_s=(int(fields[11]) + int(fields[12])) / TICK,
        minflt=int(fields[7]),
        majflt=int(fields[9]),
    )


def children_of(pid: int) -> list[int]:
    """Direct children of ``pid`` (scans /proc: a few ms on a small machine)."""
    found = []
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            stat = read_stat(int(entry.name))
            if stat is not None and stat.ppid == pid:
                found.append(stat.pid)
    return sorted(found)


def snapshot(pids: dict[str, int]) -> dict[str, Stat]:
    out = {}
    for label, pid in pids.items():
        stat = read_stat(pid)
        if stat is not None:
            out[label] = stat
    return out


def delta(before: dict[str, Stat], after: dict[str, Stat]) -> dict[str, dict[str, float]]:
    """Per label: CPU seconds and minor faults spent between the two snapshots."""
    out = {}
    for label, end in after.items():
        start = before.get(label)
        if start is None or start.pid != end.pid:
            continue
        out[label] = {"cpu_s": round(end.cpu_s - start.cpu_s, 3), "minflt": end.minflt - start.minflt}
    return out


def system_ticks() -> tuple[int, int]:
    """(busy, steal) jiffies of the whole machine, from the first line of /proc/stat."""
    fields = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    user, nice, system, _idle, _iowait, irq, softirq, steal = fields[:8]
    return user + nice + system + irq + softirq, steal


class Window:
    """Machine-wide CPU over a run, to tell our processes' CPU from everybody else's."""

    def __init__(self) -> None:
        self.busy, self.steal = system_ticks()

    def close(self, ours_cpu_s: float, wall_s: float) -> dict[str, float]:
        busy, steal = system_ticks()
        busy_s, steal_s = (busy - self.busy) / TICK, (steal - self.steal) / TICK
        return {
            "machine_busy_cores": round(busy_s / wall_s, 2),
            "foreign_cores": round(max(0.0, busy_s - ours_cpu_s) / wall_s, 2),
            "steal_cores": round(steal_s / wall_s, 2),
        }
