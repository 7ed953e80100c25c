"""The accounting dashboard page in admin: figures from payments.dashboard.selectors, drawn as SVG."""

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

from django.contrib import admin
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.utils.safestring import SafeString
from django.utils.translation import gettext as _

from core import clock
from core.money import format_money, to_major_units
from core.replica import replica_reads
from ledger.selectors import revenue_by_month
from payments.dashboard.charts import Series, bar_chart
from payments.dashboard.selectors import (
    DEFAULT_DAYS,
    DEFAULT_MONTHS,
    Dashboard,
    RefundRow,
    RevenueRow,
    dashboard_figures,
)

PERMISSION = "payments.view_dashboard"
MAX_DAYS, MAX_MONTHS = 366, 36


@dataclass(frozen=True)
class Chart:
    """One chart and the table of its numbers, which accountants copy."""

    title: str
    svg: SafeString
    header: list[str]
    rows: list[list[str]]


def _bounded(request: HttpRequest, name: str, default: int, most: int) -> int:
    try:
        value = int(request.GET.get(name, default))
    except ValueError:
        return default
    return min(max(value, 1), most)


def _day_label(day: date) -> str:
    return f"{day:%m-%d}"


def _month_label(month: date) -> str:
    return f"{month:%Y-%m}"


def _money_series(
    periods: Sequence[date], rows: Sequence[Any], currency: str, values: dict[str, Callable[[Any], int]]
) -> list[Series]:
    """Return one series per named value, in major units, with a zero for every period without rows."""
    by_period = {row.period: row for row in rows if row.currency == currency}
    return [
        Series(
            name,
            [
                to_major_units(value(by_period[period]), currency) if period in by_period else Decimal(0)
                for period in periods
            ],
        )
        for name, value in values.items()
    ]


def _revenue_charts(
    periods: Sequence[date],
    rows: list[RevenueRow],
    currencies: list[str],
    title: str,
    label: Callable[[date], str],
) -> list[Chart]:
    charts = []
    for currency in currencies:
        series = _money_series(
            periods,
            rows,
            currency,
            {_("gross"): lambda row: row.gross, _("net of refunds"): lambda row: row.net},
        )
        charts.append(
            Chart(
                title=f"{title} · {currency}",
                svg=bar_chart(
                    labels=[label(period) for period in periods], series=series, title=f"{title} · {currency}"
                ),
                header=[_("period"), _("payments"), _("gross"), _("refunded from them"), _("net")],
                rows=[
                    [
                        label(row.period),
                        f"{row.payments:,}",
                        format_money(row.gross, currency),
                        format_money(row.refunded, currency),
                        format_money(row.net, currency),
                    ]
                    for row in rows
                    if row.currency == currency
                ],
            )
        )
    return charts


def _refund_charts(months: Sequence[date], rows: list[RefundRow], currencies: list[str]) -> list[Chart]:
    title = _("Refunds per month")
    return [
        Chart(
            title=f"{title} · {currency}",
            svg=bar_chart(
                labels=[_month_label(month) for month in months],
                series=_money_series(months, rows, currency, {_("refunded"): lambda row: row.amount}),
                title=f"{title} · {currency}",
            ),
            header=[_("month"), _("refunds"), _("amount")],
            rows=[
                [_month_label(row.period), f"{row.refunds:,}", format_money(row.amount, currency)]
                for row in rows
                if row.currency == currency
            ],
        )
        for currency in currencies
    ]


def _earned_revenue_charts(months: Sequence[date]) -> list[Chart]:
    """Revenue earned per month from the ledger (accrual) next to the money received (cash)."""
    rows = revenue_by_month(date_from=months[0], date_to=_month_end(months[-1]))
    title = _("Revenue earned per month (ledger)")
    charts = []
    for currency in sorted({row.currency for row in rows}):
        ours = [row for row in rows if row.currency == currency]
        series = [
            Series(_("earned, net of refunds"), [to_major_units(row.revenue, currency) for row in ours]),
            Series(_("cash, net"), [to_major_units(row.cash, currency) for row in ours]),
        ]
        charts.append(
            Chart(
                title=f"{title} · {currency}",
                svg=bar_chart(
                    labels=[_month_label(row.month) for row in ours],
                    series=series,
                    title=f"{title} · {currency}",
                ),
                header=[_("month"), _("earned, net of refunds"), _("cash, net")],
                rows=[
                    [
                        _month_label(row.month),
                        format_money(row.revenue, currency),
                        format_money(row.cash, currency),
                    ]
                    for row in ours
                ],
            )
        )
    return charts


def _month_end(month: date) -> date:
    return (month.replace(day=28) + timedelta(days=4)).replace(day=1) - timedelta(days=1)


def _flow_chart(dashboard: Dashboard) -> Chart:
    months = dashboard.window.months
    by_month = {row.month: row for row in dashboard.flow}
    title = _("New and churned subscriptions per month")

    def counts(value: Callable[[Any], int]) -> list[int]:
        return [value(by_month[month]) if month in by_month else 0 for month in months]

    series = [
        Series(_("new"), counts(lambda row: row.new)),
        Series(_("churned, voluntary"), counts(lambda row: row.churned_voluntary)),
        Series(_("churned, involuntary"), counts(lambda row: row.churned_involuntary)),
    ]
    return Chart(
        title=title,
        svg=bar_chart(labels=[_month_label(month) for month in months], series=series, title=title),
        header=[_("month"), _("new"), _("churned, voluntary"), _("churned, involuntary"), _("net change")],
        rows=[
            [
                _month_label(row.month),
                f"{row.new:,}",
                f"{row.churned_voluntary:,}",
                f"{row.churned_involuntary:,}",
                f"{row.new - row.churned:+,}",
            ]
            for row in dashboard.flow
        ],
    )


def _percent(rate: Decimal | None) -> str:
    return "—" if rate is None else f"{rate * 100:.1f}%"


def _dunning_chart(dashboard: Dashboard) -> Chart:
    months = dashboard.window.months
    by_month = {row.month: row for row in dashboard.dunning}
    title = _("Dunning recovery rate per month")
    rates = []
    for month in months:
        rate = by_month[month].recovery_rate if month in by_month else None
        rates.append((rate or Decimal(0)) * 100)
    return Chart(
        title=title,
        svg=bar_chart(
            labels=[_month_label(month) for month in months],
            series=[Series(_("recovered, percent of settled"), rates)],
            title=title,
        ),
        header=[
            _("month due"),
            _("declined renewals"),
            _("recovered"),
            _("lost"),
            _("still retrying"),
            _("rate"),
        ],
        rows=[
            [
                _month_label(row.month),
                f"{row.entered:,}",
                f"{row.recovered:,}",
                f"{row.lost:,}",
                f"{row.open:,}",
                _percent(row.recovery_rate),
            ]
            for row in dashboard.dunning
        ],
    )


def _charts(dashboard: Dashboard) -> list[Chart]:
    window = dashboard.window
    return [
        *_revenue_charts(
            window.days, dashboard.revenue_daily, dashboard.currencies, _("Revenue per day"), _day_label
        ),
        *_revenue_charts(
            window.months,
            dashboard.revenue_monthly,
            dashboard.currencies,
            _("Revenue per month"),
            _month_label,
        ),
        *_earned_revenue_charts(window.months),
        *_refund_charts(window.months, dashboard.refunds_monthly, dashboard.currencies),
        _flow_chart(dashboard),
        _dunning_chart(dashboard),
    ]


def _dashboard(request: HttpRequest) -> HttpResponse:
    if not request.user.has_perm(PERMISSION):
        raise PermissionDenied
    # Figures only: read from the replica when there is one (core.replica).
    with replica_reads():
        dashboard = dashboard_figures(
            now=clock.now(),
            days=_bounded(request, "days", DEFAULT_DAYS, MAX_DAYS),
            months=_bounded(request, "months", DEFAULT_MONTHS, MAX_MONTHS),
        )
        charts = _charts(dashboard)
    context = {
        **admin.site.each_context(request),
        "title": _("Accounting dashboard"),
        "dashboard": dashboard,
        "mrr": [(row, format_money(row.mrr, row.currency)) for row in dashboard.mrr],
        "charts": charts,
    }
    return TemplateResponse(request, "admin/dashboard.html", context)


# admin_view sends anyone not logged in as staff to the admin login page first.
accounting_dashboard = admin.site.admin_view(_dashboard)
