"""CPU time used by the processes a benchmark runs, and by the whole machine (Linux /proc).

CPU time moves far less than throughput with the machine's other load, so a benchmark that
reports it per request (or per renewal) says where the cost is even on a busy machine.
"""

import os
from pathlib import Path


def process_cpu_seconds(pid: int) -> float:
    """Return the CPU time a process and its living descendants have used so far (Linux /proc).

    A prefork worker's pool processes are its children; a threads pool's threads are counted
    in their process.
    """
    ticks = os.sysconf("SC_CLK_TCK")
    parents: dict[int, int] = {}
    used: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            # The command name, in parentheses, may hold spaces: split after its closing one.
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        parents[int(entry.name)] = int(fields[1])
        used[int(entry.name)] = int(fields[11]) + int(fields[12])  # utime + stime
    tree, frontier = {pid}, [pid]
    while frontier:
        parent = frontier.pop()
        children = [child for child, its_parent in parents.items() if its_parent == parent]
        tree.update(children)
        frontier.extend(children)
    return sum(used.get(member, 0) for member in tree) / ticks


def machine_busy_seconds() -> float:
    """Return the CPU time every process on the machine has used since boot (all cores, not idle)."""
    fields = [int(value) for value in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    idle = fields[3] + fields[4]  # idle + iowait
    return (sum(fields[:8]) - idle) / os.sysconf("SC_CLK_TCK")
