"""Everything support reads about one billing account, for its page in admin, in a fixed number of queries.

One query per section, each capped at ACCOUNT_OVERVIEW_ROWS rows (newest first), whatever the
account's history: the cards saved at its providers, subscriptions, payments (with their
refunds, one more query), viewers' refund requests, emails, events and the audit log's entries
about any of those rows.
"""

from dataclasses import dataclass
from typing import Any

from auditlog.models import LogEntry
from django.contrib.contenttypes.models import ContentType
from django.db.models import CharField, Prefetch, Q, QuerySet
from django.db.models.functions import Cast

from accounts.models import BillingAccount
from billing.models import Subscription
from notifications.models import Notice, OutboxEvent
from payments.models import Payment, ProviderCustomer, Refund, RefundRequest

# Rows shown per section; the newest first.
ACCOUNT_OVERVIEW_ROWS = 50


@dataclass(frozen=True)
class AccountOverview:
    """One account's rows of every kind support looks at, the newest first."""

    # Its customer at each provider, with the card saved there (one row per provider).
    provider_customers: list[ProviderCustomer]
    subscriptions: list[Subscription]
    payments: list[Payment]
    refund_requests: list[RefundRequest]
    notices: list[Notice]
    events: list[OutboxEvent]
    audit_entries: list[LogEntry]


def _pks_as_text(queryset: QuerySet[Any]) -> QuerySet[Any]:
    # auditlog keeps the object's key as text: compare with the rows' keys cast to text.
    return queryset.values_list(Cast("pk", output_field=CharField()), flat=True)


def account_audit_entries(*, account: BillingAccount, limit: int = ACCOUNT_OVERVIEW_ROWS) -> list[LogEntry]:
    """Return the audit log's entries about an account or its subscriptions, payments, refunds,
    refund requests and emails, newest first (one query, once content types are cached)."""
    types = ContentType.objects.get_for_models(
        BillingAccount, Subscription, Payment, Refund, RefundRequest, Notice
    )
    rows: dict[type, QuerySet[Any]] = {
        BillingAccount: BillingAccount.objects.filter(pk=account.pk),
        Subscription: Subscription.objects.filter(account=account),
        Payment: Payment.objects.filter(subscription__account=account),
        Refund: Refund.objects.filter(payment__subscription__account=account),
        RefundRequest: RefundRequest.objects.filter(account=account),
        Notice: Notice.objects.filter(subscription__account=account),
    }
    about = Q()
    for model, queryset in rows.items():
        about |= Q(content_type=types[model], object_pk__in=_pks_as_text(queryset))
    return list(
        LogEntry.objects.filter(about).select_related("actor", "content_type").order_by("-timestamp")[:limit]
    )


def account_overview(*, account: BillingAccount, limit: int = ACCOUNT_OVERVIEW_ROWS) -> AccountOverview:
    """Return what support sees on an account's page: the newest `limit` rows of each kind."""
    refunds = Refund.objects.select_related("created_by", "approved_by").order_by("-created_at")
    return AccountOverview(
        provider_customers=list(ProviderCustomer.objects.filter(account=account).order_by("provider")),
        subscriptions=list(
            Subscription.objects.filter(account=account)
            .select_related("tariff")
            .order_by("-created_at")[:limit]
        ),
        payments=list(
            Payment.objects.filter(subscription__account=account)
            .prefetch_related(Prefetch("refunds", queryset=refunds))
            .order_by("-created_at")[:limit]
        ),
        refund_requests=list(
            RefundRequest.objects.filter(account=account)
            .select_related("payment", "refund", "decided_by")
            .order_by("-created_at")[:limit]
        ),
        notices=list(Notice.objects.filter(subscription__account=account).order_by("-created_at")[:limit]),
        events=list(OutboxEvent.objects.filter(user_id=account.user_id).order_by("-occurred_at")[:limit]),
        audit_entries=account_audit_entries(account=account, limit=limit),
    )
