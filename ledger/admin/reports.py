"""Accounting's report pages of the books: trial balance, deferred revenue's schedule, revenue by month.

Reached from the journal entries' list (`JournalEntryAdmin.get_urls`), for holders of
`ledger.view_ledger_reports` only. Figures come from ledger.selectors, per currency, written by
`format_money`; days and months are UTC. A malformed day in the query string is shown as an
error on the page, not a 500.

Each provider's clearing balance is the one our books give. For the books as they are now, the
trial balance shows it next to the balance the provider reports (read from the provider when
the page is opened; see ledger.provider_balances); for the end of a past day it cannot, since a
provider's balance can only be read as it is now.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

from django.contrib import admin
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils.translation import gettext as _

from core import clock
from core.days import day_parse, utc_midnight
from core.money import format_money
from core.replica import replica_reads
from ledger.provider_balances import ProviderBalanceRow, provider_balance_comparison
from ledger.selectors import (
    BalanceLine,
    clearing_balances,
    deferred_revenue_schedule,
    revenue_by_month,
    trial_balance,
)

PERMISSION = "ledger.view_ledger_reports"
EXPORT_PERMISSION = "ledger.export_journalentry"
# The longest revenue range a page shows: ten years of months.
MAX_REVENUE_MONTHS = 120
SCHEDULE_MONTHS = 12


class ReportInputError(ValueError):
    """A day in the query string that is malformed or out of range."""


@dataclass(frozen=True)
class Table:
    """One currency's table as the page shows it: text cells, a total row, and a note."""

    title: str
    header: list[str]
    rows: list[list[str]]
    footer: list[str]
    ok: bool = True
    note: str = ""


@dataclass(frozen=True)
class ProviderLine:
    """One provider and currency as the page shows it: our books next to the provider's figures.

    `unreadable` replaces the provider's figures when it could not be read.
    """

    provider: str
    currency: str
    books: str
    available: str = ""
    pending: str = ""
    reported: str = ""
    difference: str = ""
    agrees: bool = False
    unreadable: str = ""


def _require(request: HttpRequest, permission: str = PERMISSION) -> None:
    if not request.user.has_perm(permission):
        raise PermissionDenied


def _day(request: HttpRequest, name: str) -> date | None:
    raw = request.GET.get(name, "").strip()
    if not raw:
        return None
    try:
        return day_parse(raw)
    except ValueError as exc:
        raise ReportInputError(_("Enter the day as YYYY-MM-DD, between 2000 and 2999.")) from exc


def _render(
    model_admin: admin.ModelAdmin[Any], request: HttpRequest, template: str, context: dict[str, Any]
) -> TemplateResponse:
    base = {
        **model_admin.admin_site.each_context(request),
        "opts": model_admin.opts,
        "changelist_url": reverse("admin:ledger_journalentry_changelist"),
        "reports": [
            (reverse("admin:ledger_trial_balance"), _("Trial balance")),
            (reverse("admin:ledger_deferred_revenue"), _("Deferred revenue schedule")),
            (reverse("admin:ledger_revenue_by_month"), _("Revenue by month")),
        ],
        "can_export": request.user.has_perm(EXPORT_PERMISSION),
        "export_url": reverse("admin:ledger_journal_export"),
    }
    return TemplateResponse(request, f"admin/ledger/{template}", {**base, **context})


def _side(line: BalanceLine) -> str:
    return _("debit") if line.normal_side == "debit" else _("credit")


def _money_or_blank(amount: int, currency: str) -> str:
    return format_money(amount, currency) if amount else ""


def trial_balance_page(model_admin: admin.ModelAdmin[Any], request: HttpRequest) -> HttpResponse:
    """Show every account's balance per currency at the end of a UTC day (default: now)."""
    _require(request)
    error = ""
    day: date | None = None
    try:
        day = _day(request, "day")
    except ReportInputError as exc:
        error = str(exc)
    at = utc_midnight(day + timedelta(days=1)) if day is not None else clock.now()
    # Figures only: from the read replica when there is one (core.replica).
    with replica_reads():
        tables = [
            Table(
                title=balance.currency,
                header=[_("account"), _("grows on"), _("debit"), _("credit"), _("balance")],
                rows=[
                    [
                        line.code,
                        _side(line),
                        _money_or_blank(line.debit, line.currency),
                        _money_or_blank(line.credit, line.currency),
                        format_money(line.balance, line.currency),
                    ]
                    for line in balance.lines
                ],
                footer=[
                    _("total"),
                    "",
                    format_money(balance.total_debit, balance.currency),
                    format_money(balance.total_credit, balance.currency),
                    "",
                ],
                ok=balance.balanced,
                note=_("Debits equal credits.")
                if balance.balanced
                else _("Does not balance: debits exceed credits by %(difference)s.")
                % {"difference": format_money(balance.total, balance.currency)},
            )
            for balance in trial_balance(at=at)
        ]
        clearing = [
            [row.provider, row.currency, format_money(row.amount, row.currency)]
            for row in clearing_balances(at=at)
        ]
        # A provider is read as it is now: next to the books of a past day its balance means nothing.
        providers = (
            [_provider_line(row) for row in provider_balance_comparison(at=at)] if day is None else None
        )
    title = (
        _("Trial balance at the end of %(day)s (UTC)") % {"day": day.isoformat()}
        if day is not None
        else _("Trial balance now")
    )
    return _render(
        model_admin,
        request,
        "trial_balance.html",
        {
            "title": title,
            "day": day.isoformat() if day else request.GET.get("day", ""),
            "at": _moment(at),
            "tables": tables,
            "clearing": clearing,
            "providers": providers,
            "error": error,
        },
    )


def _provider_line(row: ProviderBalanceRow) -> ProviderLine:
    books = format_money(row.books, row.currency) if row.currency else ""
    if row.available is None or row.pending is None or row.difference is None:
        return ProviderLine(
            provider=row.provider,
            currency=row.currency,
            books=books,
            unreadable=_("Could not be read: %(reason)s. Reload the page to try again.")
            % {"reason": row.unreadable},
        )
    return ProviderLine(
        provider=row.provider,
        currency=row.currency,
        books=books,
        available=format_money(row.available, row.currency),
        pending=format_money(row.pending, row.currency),
        reported=format_money(row.available + row.pending, row.currency),
        difference=format_money(row.difference, row.currency),
        agrees=row.agrees,
    )


def deferred_revenue_page(model_admin: admin.ModelAdmin[Any], request: HttpRequest) -> HttpResponse:
    """Show the revenue deferred now per currency and the months it will be earned in."""
    _require(request)
    today = clock.now().astimezone(UTC).date()
    tables = []
    # Figures only: from the read replica when there is one (core.replica).
    with replica_reads():
        for schedule in deferred_revenue_schedule(today=today, months=SCHEDULE_MONTHS):
            currency = schedule.currency
            rows = [
                [f"{month.month:%Y-%m}", format_money(month.amount, currency)] for month in schedule.months
            ]
            rows.append([_("later"), format_money(schedule.later, currency)])
            note = (
                _("The deferred revenue account holds the same amount.")
                if schedule.agrees
                else _(
                    "The deferred revenue account holds %(books)s: it differs from the plans by %(difference)s."
                )
                % {
                    "books": format_money(schedule.books, currency),
                    "difference": format_money(schedule.books - schedule.deferred, currency),
                }
            )
            tables.append(
                Table(
                    title=currency,
                    header=[_("month"), _("to be earned")],
                    rows=rows,
                    footer=[_("deferred now"), format_money(schedule.total, currency)],
                    ok=schedule.agrees,
                    note=note,
                )
            )
    return _render(
        model_admin,
        request,
        "deferred_revenue.html",
        {"title": _("Deferred revenue schedule"), "today": today, "tables": tables},
    )


def _revenue_range(request: HttpRequest, today: date) -> tuple[date, date]:
    date_from, date_to = _day(request, "date_from"), _day(request, "date_to")
    date_to = date_to or today
    if date_from is None:
        # The month of the end and the eleven before it.
        months = date_to.year * 12 + date_to.month - 1 - 11
        date_from = date(months // 12, months % 12 + 1, 1)
    if date_to < date_from:
        raise ReportInputError(_("The end of the range must not come before its start."))
    if (date_to.year - date_from.year) * 12 + date_to.month - date_from.month >= MAX_REVENUE_MONTHS:
        raise ReportInputError(
            _("Choose a range of at most %(months)d months.") % {"months": MAX_REVENUE_MONTHS}
        )
    return date_from, date_to


def revenue_page(model_admin: admin.ModelAdmin[Any], request: HttpRequest) -> HttpResponse:
    """Show per currency and UTC month the revenue earned (accrual) next to the money received (cash)."""
    _require(request)
    today = clock.now().astimezone(UTC).date()
    error = ""
    tables = []
    date_from = date_to = None
    try:
        date_from, date_to = _revenue_range(request, today)
    except ReportInputError as exc:
        error = str(exc)
    if date_from is not None and date_to is not None:
        with replica_reads():  # figures only: from the read replica when there is one
            tables = _revenue_tables(date_from, date_to)
    return _render(
        model_admin,
        request,
        "revenue_by_month.html",
        {
            "title": _("Revenue by month: accrual and cash"),
            "date_from": date_from.isoformat() if date_from else request.GET.get("date_from", ""),
            "date_to": date_to.isoformat() if date_to else request.GET.get("date_to", ""),
            "tables": tables,
            "error": error,
        },
    )


def _revenue_tables(date_from: date, date_to: date) -> list[Table]:
    by_currency: dict[str, list[Any]] = {}
    for row in revenue_by_month(date_from=date_from, date_to=date_to):
        by_currency.setdefault(row.currency, []).append(row)
    tables = []
    for currency, rows in by_currency.items():

        def money(amount: int, currency: str = currency) -> str:
            return format_money(amount, currency)

        tables.append(
            Table(
                title=currency,
                header=[
                    _("month"),
                    _("revenue earned"),
                    _("refunds of earned revenue"),
                    _("revenue, net (accrual)"),
                    _("cash received"),
                    _("cash refunded"),
                    _("cash, net"),
                ],
                rows=[
                    [
                        f"{row.month:%Y-%m}",
                        money(row.recognized),
                        money(row.refunded_earned),
                        money(row.revenue),
                        money(row.cash_in),
                        money(row.cash_refunded),
                        money(row.cash),
                    ]
                    for row in rows
                ],
                footer=[
                    _("total"),
                    money(sum(row.recognized for row in rows)),
                    money(sum(row.refunded_earned for row in rows)),
                    money(sum(row.revenue for row in rows)),
                    money(sum(row.cash_in for row in rows)),
                    money(sum(row.cash_refunded for row in rows)),
                    money(sum(row.cash for row in rows)),
                ],
            )
        )
    return tables


def _moment(at: datetime) -> str:
    return f"{at.astimezone(UTC):%Y-%m-%d %H:%M:%S} UTC"
