"""The days a reconciliation report compares: their reading window, the provider's ledger, the totals.

Shared by the payments' comparison (`comparison`) and the refunds' (`refunds`).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from payments.gateways.base import CreatedRange, SettlementLine
from payments.services.daily_report.shapes import CurrencyTotals


class Ledger:
    """The provider's ledger entries of the window, found by id or by the object they record."""

    def __init__(self, lines: Iterable[SettlementLine]) -> None:
        self.by_id = {line.id: line for line in lines}
        self.by_source = {line.source_id: line for line in self.by_id.values() if line.source_id}

    def of(self, line_id: str | None, source_id: str) -> SettlementLine | None:
        if line_id and line_id in self.by_id:
            return self.by_id[line_id]
        return self.by_source.get(source_id)


@dataclass(slots=True)
class ReportDays:
    """The days being reported on, the provider, its reading window and ledger, and the totals so far."""

    provider: str
    start: datetime
    end: datetime
    wide: CreatedRange
    ledger: Ledger
    totals: dict[str, CurrencyTotals] = field(default_factory=dict)

    def holds(self, moment: datetime | None) -> bool:
        return moment is not None and self.start <= moment < self.end

    def totals_of(self, currency: str) -> CurrencyTotals:
        return self.totals.setdefault(currency, CurrencyTotals(currency=currency))


def moment_text(value: datetime | None) -> str:
    """Return a moment as the report shows it, in UTC to the second."""
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC") if value is not None else "-"
