"""Print one of accounting's reports of the books, as the admin pages show it (ledger/admin/reports.py)."""

from datetime import UTC, date, datetime, timedelta
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils.translation import gettext as _

from core import clock
from core.days import day_argument, utc_midnight
from core.money import format_money
from ledger.provider_balances import ProviderBalanceRow, provider_balance_comparison
from ledger.selectors import (
    RevenueMonth,
    clearing_balances,
    deferred_revenue_schedule,
    revenue_by_month,
    trial_balance,
)

SCHEDULE_MONTHS = 12


def _moment(value: str) -> datetime:
    """Return the end of a UTC day (YYYY-MM-DD) or an ISO 8601 moment (UTC when no zone is given)."""
    if len(value.strip()) == len("YYYY-MM-DD"):
        return utc_midnight(day_argument(value) + timedelta(days=1))
    try:
        moment = datetime.fromisoformat(value.strip())
    except ValueError as exc:
        raise CommandError(_("Enter the moment as YYYY-MM-DD or an ISO 8601 date and time.")) from exc
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _table(header: list[str], rows: list[list[str]]) -> list[str]:
    """Return the lines of a plain text table: the first column left-aligned, numbers right-aligned."""
    widths = [max(len(row[index]) for row in [header, *rows]) for index in range(len(header))]
    lines = []
    for row in [header, *rows]:
        cells = [
            cell.ljust(widths[index]) if index == 0 else cell.rjust(widths[index])
            for index, cell in enumerate(row)
        ]
        lines.append("  ".join(cells).rstrip())
    return lines


def _provider_cells(row: ProviderBalanceRow) -> list[str]:
    """Return a comparison row's cells; the provider's are "?" when it could not be read."""
    books = format_money(row.books, row.currency) if row.currency else ""
    if row.reported is None or row.difference is None:
        return [row.provider, row.currency, books, "?", "?"]
    return [
        row.provider,
        row.currency,
        books,
        format_money(row.reported, row.currency),
        format_money(row.difference, row.currency),
    ]


class Command(BaseCommand):
    help = (
        "Print a report of the ledger, per currency: the trial balance at the end of a UTC day or a "
        "moment (--trial-balance [--at], default now, with each provider's clearing balance, and "
        "without --at the balance each provider reports now next to it), the "
        "schedule of deferred revenue over the next 12 months (--deferred), or revenue per UTC month on "
        "an accrual basis next to cash received (--revenue --from --to, both days included). Exits "
        "with an error when a currency's trial balance does not sum to zero."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        report = parser.add_mutually_exclusive_group(required=True)
        report.add_argument("--trial-balance", action="store_true", help="Every account's balance.")
        report.add_argument("--deferred", action="store_true", help="When deferred revenue will be earned.")
        report.add_argument("--revenue", action="store_true", help="Revenue (accrual) and cash per month.")
        parser.add_argument(
            "--at",
            type=_moment,
            help="For --trial-balance: the end of a UTC day (YYYY-MM-DD) or an ISO 8601 moment (default: now).",
        )
        parser.add_argument(
            "--from", dest="date_from", type=day_argument, help="For --revenue: the first UTC day."
        )
        parser.add_argument(
            "--to",
            dest="date_to",
            type=day_argument,
            help="For --revenue: the last UTC day, included (default: today).",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        if options["trial_balance"]:
            # A provider is read as it is now: only the books as they are now can stand next to it.
            at = options["at"]
            self._trial_balance(at or clock.now(), with_providers=at is None)
        elif options["deferred"]:
            self._deferred(clock.now().astimezone(UTC).date())
        else:
            today = clock.now().astimezone(UTC).date()
            date_from, date_to = options["date_from"], options["date_to"] or today
            if date_from is None:
                raise CommandError(_("Give the first day of the range with --from."))
            if date_to < date_from:
                raise CommandError(_("The end of the range must not come before its start."))
            self._revenue(date_from, date_to)

    def _write(self, lines: list[str]) -> None:
        for line in lines:
            self.stdout.write(line)

    def _trial_balance(self, at: datetime, *, with_providers: bool) -> None:
        self.stdout.write(_("Trial balance at %(at)s") % {"at": at.astimezone(UTC).isoformat()})
        balances = trial_balance(at=at)
        if not balances:
            self.stdout.write(_("No entry is in the books at that moment."))
        unbalanced = []
        for balance in balances:
            currency = balance.currency
            self.stdout.write("")
            self.stdout.write(currency)
            rows = [
                [
                    line.code,
                    _("debit") if line.normal_side == "debit" else _("credit"),
                    format_money(line.debit, currency) if line.debit else "",
                    format_money(line.credit, currency) if line.credit else "",
                    format_money(line.balance, currency),
                ]
                for line in balance.lines
            ]
            rows.append(
                [
                    _("total"),
                    "",
                    format_money(balance.total_debit, currency),
                    format_money(balance.total_credit, currency),
                    "",
                ]
            )
            self._write(_table([_("account"), _("grows on"), _("debit"), _("credit"), _("balance")], rows))
            if not balance.balanced:
                unbalanced.append(currency)
        if with_providers:
            self._provider_balances(at)
        elif clearing := clearing_balances(at=at):
            self.stdout.write("")
            self.stdout.write(_("Held by each provider, per our books"))
            self._write(
                _table(
                    [_("provider"), _("currency"), _("held for us")],
                    [
                        [row.provider, row.currency, format_money(row.amount, row.currency)]
                        for row in clearing
                    ],
                )
            )
        if unbalanced:
            raise CommandError(
                _("The trial balance does not sum to zero in %(currencies)s.")
                % {"currencies": ", ".join(unbalanced)}
            )

    def _provider_balances(self, at: datetime) -> None:
        rows = provider_balance_comparison(at=at)
        if not rows:
            return
        self.stdout.write("")
        self.stdout.write(_("Held by each provider, per our books and per the provider now"))
        self._write(
            _table(
                [
                    _("provider"),
                    _("currency"),
                    _("per our books"),
                    _("per the provider"),
                    _("books less provider"),
                ],
                [_provider_cells(row) for row in rows],
            )
        )
        unreadable = {row.provider: row.unreadable for row in rows if row.unreadable}
        for provider, reason in unreadable.items():
            self.stdout.write(
                _("%(provider)s could not be read: %(reason)s") % {"provider": provider, "reason": reason}
            )

    def _deferred(self, today: date) -> None:
        self.stdout.write(
            _("Deferred revenue on %(day)s and the months it will be earned in") % {"day": today}
        )
        schedules = deferred_revenue_schedule(today=today, months=SCHEDULE_MONTHS)
        if not schedules:
            self.stdout.write(_("No revenue is deferred."))
        for schedule in schedules:
            currency = schedule.currency
            self.stdout.write("")
            self.stdout.write(currency)
            rows = [
                [f"{month.month:%Y-%m}", format_money(month.amount, currency)] for month in schedule.months
            ]
            rows.append([_("later"), format_money(schedule.later, currency)])
            rows.append([_("deferred now"), format_money(schedule.total, currency)])
            self._write(_table([_("month"), _("to be earned")], rows))
            if not schedule.agrees:
                self.stdout.write(
                    _("The deferred revenue account holds %(books)s: it differs from the plans.")
                    % {"books": format_money(schedule.books, currency)}
                )

    def _revenue(self, date_from: date, date_to: date) -> None:
        self.stdout.write(
            _("Revenue by month from %(from)s to %(to)s (UTC): accrual and cash")
            % {"from": date_from.isoformat(), "to": date_to.isoformat()}
        )
        by_currency: dict[str, list[RevenueMonth]] = {}
        for row in revenue_by_month(date_from=date_from, date_to=date_to):
            by_currency.setdefault(row.currency, []).append(row)
        if not by_currency:
            self.stdout.write(_("No revenue and no money moved in these days."))
        header = [
            _("month"),
            _("revenue earned"),
            _("refunds of earned revenue"),
            _("revenue, net (accrual)"),
            _("cash received"),
            _("cash refunded"),
            _("cash, net"),
        ]
        for currency, months in by_currency.items():

            def cells(label: str, rows: list[RevenueMonth], currency: str = currency) -> list[str]:
                figures = (
                    sum(row.recognized for row in rows),
                    sum(row.refunded_earned for row in rows),
                    sum(row.revenue for row in rows),
                    sum(row.cash_in for row in rows),
                    sum(row.cash_refunded for row in rows),
                    sum(row.cash for row in rows),
                )
                return [label, *(format_money(amount, currency) for amount in figures)]

            self.stdout.write("")
            self.stdout.write(currency)
            rows = [cells(f"{month.month:%Y-%m}", [month]) for month in months]
            self._write(_table(header, [*rows, cells(_("total"), months)]))
