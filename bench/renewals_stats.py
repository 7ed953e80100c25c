"""Figures of bench/renewals: how outgoing requests spread over time, and what a run measured."""

import math
import statistics
from collections import Counter
from dataclasses import dataclass, field


def busiest_window(times: list[float], width: float = 1.0) -> int:
    """Return the most requests in any window [t, t + width) that starts at a request."""
    ordered = sorted(times)
    busiest, end = 0, 0
    for start, at in enumerate(ordered):
        while end < len(ordered) and ordered[end] < at + width:
            end += 1
        busiest = max(busiest, end - start)
    return busiest


def bucket_needed(times: list[float], rate: float) -> int:
    """Return the smallest token bucket, refilled at `rate`/s, that would have let every request in.

    This is how a provider that counts with a token bucket (as Stripe does) sees the
    requests: 1 means they never came closer than 1/rate apart on average; b means at most
    b - 1 requests ever arrived ahead of that pace.
    """
    interval = 1 / rate
    arrival_time_due: float | None = None  # GCRA's "theoretical arrival time"
    furthest_ahead = 0.0
    for at in sorted(times):
        due = at if arrival_time_due is None else max(arrival_time_due, at)
        furthest_ahead = max(furthest_ahead, due - at)
        arrival_time_due = due + interval
    return math.floor(furthest_ahead / interval + 1e-9) + 1


@dataclass
class LatencyRun:
    """One run of the workers over every due subscription at one simulated latency."""

    latency_ms: int
    due: int
    renewed: int = 0
    wall_seconds: float = float("nan")
    requests: int = 0
    failed_requests: int = 0
    first_to_last_seconds: float = float("nan")
    busiest: int = 0
    bucket: int = 0
    enqueue_queries: int = 0
    transactions: int = 0
    worker_retries: int = 0
    worker_errors: int = 0  # lines the workers logged at ERROR (a task that failed, say)
    notification_tasks: int = 0
    finished: bool = False
    # CPU seconds used over the run: by the workers (and their pools), the sandbox, the whole
    # machine (every process, other people's work included).
    worker_cpu_seconds: float = float("nan")
    sandbox_cpu_seconds: float = float("nan")
    machine_cpu_seconds: float = float("nan")

    @property
    def renewals_per_second(self) -> float:
        return self.renewed / self.wall_seconds if self.wall_seconds > 0 else float("nan")

    @property
    def requests_per_second(self) -> float:
        """Return the mean rate of requests from the first to the last one."""
        if self.requests < 2 or not self.first_to_last_seconds > 0:
            return float("nan")
        return (self.requests - 1) / self.first_to_last_seconds

    @property
    def transactions_per_renewal(self) -> float:
        return self.transactions / self.renewed if self.renewed else float("nan")

    def ms_per_renewal(self, cpu_seconds: float) -> float:
        """Return CPU seconds used over the run as milliseconds per renewal."""
        return cpu_seconds * 1000 / self.renewed if self.renewed else float("nan")

    def record_requests(self, times: list[float], *, rate: float | None) -> None:
        """Read the requests' arrival times (seconds) at the sandbox."""
        self.requests = len(times)
        if times:
            self.first_to_last_seconds = max(times) - min(times)
            self.busiest = busiest_window(times)
            self.bucket = bucket_needed(times, rate) if rate else 0


@dataclass
class QueryCount:
    """Queries of `renewal_run` over a sample of subscriptions, with `table_size` in the table."""

    table_size: int
    per_renewal: list[int] = field(default_factory=list)
    kinds: Counter[str] = field(default_factory=Counter)  # statements of one renewal, by verb
    seconds: list[float] = field(default_factory=list)  # wall time of each renewal
    cpu_seconds: list[float] = field(default_factory=list)  # this process's CPU for each renewal

    def add(
        self, statements: list[str], *, seconds: float = float("nan"), cpu_seconds: float = float("nan")
    ) -> None:
        """Record the SQL statements one renewal ran, and the time it took."""
        self.per_renewal.append(len(statements))
        self.seconds.append(seconds)
        self.cpu_seconds.append(cpu_seconds)
        if not self.kinds:
            self.kinds.update(statement.split(None, 1)[0].upper() for statement in statements)

    @property
    def typical(self) -> int:
        """Return the number of queries most renewals made, leaving out one-off extras.

        The first renewals in a new database make a few more queries, once (the ledger opens its
        accounts on first use): the same N gives the same typical count.
        """
        return Counter(self.per_renewal).most_common(1)[0][0]

    @property
    def median_ms(self) -> float:
        return statistics.median(self.seconds) * 1000 if self.seconds else float("nan")

    @property
    def median_cpu_ms(self) -> float:
        return statistics.median(self.cpu_seconds) * 1000 if self.cpu_seconds else float("nan")

    @property
    def low(self) -> int:
        return min(self.per_renewal)

    @property
    def high(self) -> int:
        return max(self.per_renewal)

    @property
    def mean(self) -> float:
        return statistics.mean(self.per_renewal)

    def kinds_text(self) -> str:
        return ", ".join(f"{count} {verb}" for verb, count in self.kinds.most_common())

    def text(self) -> str:
        if self.low == self.high:
            return str(self.low)
        return f"{self.low}-{self.high} (mean {self.mean:.2f})"
