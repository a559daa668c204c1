"""A pytest plugin: how many of the machine's cores were busy while each test ran.

    PYTHONPATH=benchmarks SUITE_CORES_OUT=/tmp/cores.tsv pytest --runslow -p suite_cores
    sort -rn /tmp/cores.tsv | head

Each test (setup, call and teardown) appends `seconds, busy cores, test id`
to the file, the busy cores read from `/proc/stat` before and after, so
the processes a test starts count too, and so does whatever else the
machine runs: measure on an otherwise idle machine. Under several xdist
workers every line sees all of them. Linux only.
"""

import os
import time

import pytest


def _cpu_ticks():
    """`(all ticks, idle ticks)` of the machine since boot."""
    with open("/proc/stat", encoding="ascii") as f:
        ticks = [int(value) for value in f.readline().split()[1:]]
    # idle and iowait: a core waiting on the disk is not computing.
    return sum(ticks), ticks[3] + ticks[4]


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_protocol(item, nextitem):
    started, (total, idle) = time.perf_counter(), _cpu_ticks()
    yield
    seconds = time.perf_counter() - started
    total_after, idle_after = _cpu_ticks()
    spent = total_after - total
    busy = 1.0 - (idle_after - idle) / spent if spent else 0.0
    with open(os.environ.get("SUITE_CORES_OUT", "suite_cores.tsv"), "a", encoding="utf-8") as f:
        f.write(f"{seconds:.2f}\t{busy * (os.cpu_count() or 1):.2f}\t{item.nodeid}\n")
