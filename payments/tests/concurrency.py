"""Run a callable from many threads at once, each on its own database connection."""

import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

from django.db import connections

T = TypeVar("T")


def run_concurrently(worker: Callable[[int], T], count: int) -> list[T]:
    """Start `count` calls of `worker(i)` together (a barrier releases them at once)."""
    barrier = threading.Barrier(count)

    def run(index: int) -> T:
        try:
            barrier.wait()
            return worker(index)
        finally:
            connections.close_all()

    with ThreadPoolExecutor(max_workers=count) as pool:
        return list(pool.map(run, range(count)))
