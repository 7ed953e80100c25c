"""bench/renewals' figures: the typical query count, and CPU per renewal from /proc."""

import os

from bench.cpu import machine_busy_seconds, process_cpu_seconds
from bench.renewals_stats import LatencyRun, QueryCount


def test_a_one_off_extra_query_does_not_change_the_typical_count():
    # The first renewal in a new database opens the ledger's accounts: a few queries more, once.
    few, many = QueryCount(table_size=100), QueryCount(table_size=10_000)
    for count in [45, 37, 37, 37]:
        few.add(["SELECT 1"] * count, seconds=0.03, cpu_seconds=0.02)
    for count in [37, 37, 37]:
        many.add(["SELECT 1"] * count)

    assert (few.typical, many.typical) == (37, 37)
    assert few.text() == "37-45 (mean 39.00)"
    assert few.median_ms == 30.0


def test_cpu_is_counted_per_renewal():
    run = LatencyRun(latency_ms=300, due=1000, renewed=1000, worker_cpu_seconds=21.0)

    assert run.ms_per_renewal(run.worker_cpu_seconds) == 21.0


def test_this_process_and_the_machine_have_used_cpu():
    before = process_cpu_seconds(os.getpid())
    sum(number * number for number in range(300_000))

    assert process_cpu_seconds(os.getpid()) > before
    assert machine_busy_seconds() > 0
