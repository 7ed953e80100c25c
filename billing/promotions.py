"""Promo codes at subscribe: check the code a viewer typed, and count its uses exactly.

How uses are counted (the one rule the limits rest on):

- A use counts from the subscribe that redeems it. `PromoCode.times_redeemed` is raised by
  one conditional UPDATE (`times_redeemed < max_redemptions`) inside the subscribe's
  transaction: concurrent subscribes queue on the code's row, exactly `max_redemptions` of
  them win, and a subscribe that rolls back takes its use back with it.
- A subscription that ends without ever starting (its checkout expired or was abandoned, or
  it was canceled while pending) gives its use back. Nothing else has to know about
  promo codes for that: the use is handed over at once when the viewer's next
  subscribe with the same code replaces the pending subscription, and otherwise given back
  lazily, by the first subscribe that finds the code used up.

So `times_redeemed` may still include the uses of checkouts that expired since, until the
code runs out; per-account limits never count them.
"""

from datetime import datetime
from typing import Any

from django.db import transaction
from django.db.models import F, Q, QuerySet

from accounts.models import BillingAccount
from billing.models import Subscription, SubscriptionStatus
from core.errors import DomainError
from tariffs.models import PromoCode, PromoKind, PromoRedemption, Tariff
from tariffs.selectors import promo_code_get, promo_code_normalize


class PromoCodeError(DomainError):
    """A promo code that cannot be used for this subscribe (always a 400)."""

    status_code = 400


class PromoCodeInvalid(PromoCodeError):
    code = "promo_code_invalid"
    message = "This promo code does not exist or is no longer offered."


class PromoCodeNotYetValid(PromoCodeError):
    code = "promo_code_not_yet_valid"
    message = "This promo code cannot be used yet."


class PromoCodeExpired(PromoCodeError):
    code = "promo_code_expired"
    message = "This promo code has expired."


class PromoCodeNotApplicable(PromoCodeError):
    code = "promo_code_not_applicable"
    message = "This promo code cannot be used for this tariff."


class PromoCodeAlreadyUsed(PromoCodeError):
    code = "promo_code_already_used"
    message = "You have already used this promo code as many times as it allows."


class PromoCodeExhausted(PromoCodeError):
    code = "promo_code_exhausted"
    message = "This promo code has been used up."


# Every refusal of a promo code, for the API description.
PROMO_CODE_ERRORS: tuple[type[PromoCodeError], ...] = (
    PromoCodeInvalid,
    PromoCodeNotYetValid,
    PromoCodeExpired,
    PromoCodeNotApplicable,
    PromoCodeAlreadyUsed,
    PromoCodeExhausted,
)

# A subscription that ended without ever starting: its use of a code is given back.
_NEVER_STARTED = Q(
    subscription__status=SubscriptionStatus.CANCELED, subscription__billing_anchor__isnull=True
)


def _counted(redemptions: QuerySet[PromoRedemption]) -> QuerySet[PromoRedemption]:
    """Return the redemptions that still count toward a code's limits."""
    return redemptions.filter(released_at__isnull=True).exclude(_NEVER_STARTED)


def promo_code_validate(
    *,
    code: str,
    account: BillingAccount,
    tariff: Tariff,
    at: datetime,
    replacing: Subscription | None = None,
) -> PromoCode:
    """Return the promo code a viewer typed for a tariff, or raise why it cannot be used.

    Writes nothing. Call it under the account's row lock, so that the per-account limit
    holds; the total limit is enforced when the use is counted (`promo_code_redeem`).
    `replacing` is the viewer's pending subscription this subscribe replaces: its use does
    not count against the viewer.
    """
    details: dict[str, Any] = {"promo_code": promo_code_normalize(code)}
    promo = promo_code_get(code=code)
    if promo is None or not promo.is_active:
        raise PromoCodeInvalid(details=details)
    if promo.valid_from is not None and at < promo.valid_from:
        raise PromoCodeNotYetValid(details=details)
    if promo.valid_until is not None and at >= promo.valid_until:
        raise PromoCodeExpired(details=details)
    restricted_to = {restricted.pk for restricted in promo.tariffs.all()}
    other_currency = promo.kind == PromoKind.FIXED and promo.currency != tariff.currency
    if other_currency or (restricted_to and tariff.pk not in restricted_to):
        raise PromoCodeNotApplicable(details={**details, "tariff": tariff.slug})
    if promo.max_per_account is not None:
        uses = _counted(PromoRedemption.objects.filter(promo=promo, account=account))
        if replacing is not None:
            uses = uses.exclude(subscription=replacing)
        if uses.count() >= promo.max_per_account:
            raise PromoCodeAlreadyUsed(details=details)
    return promo


def _take_use(promo: PromoCode) -> bool:
    """Count one use if the code has one left; the row lock this takes queues other subscribes."""
    has_room = Q(max_redemptions__isnull=True) | Q(times_redeemed__lt=F("max_redemptions"))
    taken = PromoCode.objects.filter(has_room, pk=promo.pk).update(times_redeemed=F("times_redeemed") + 1)
    return taken == 1


def _give_back_never_started(promo: PromoCode, at: datetime) -> int:
    """Give back the uses of the code's subscriptions that ended unpaid; return how many."""
    # Rows another subscribe is giving back right now are skipped, so no use is given back
    # twice and no two subscribes wait on each other here.
    stale = list(
        PromoRedemption.objects.select_for_update(skip_locked=True, of=("self",))
        .filter(_NEVER_STARTED, promo=promo, released_at__isnull=True)
        .values_list("pk", flat=True)
    )
    if not stale:
        return 0
    PromoRedemption.objects.filter(pk__in=stale).update(released_at=at)
    PromoCode.objects.filter(pk=promo.pk).update(times_redeemed=F("times_redeemed") - len(stale))
    return len(stale)


@transaction.atomic
def promo_code_redeem(*, promo: PromoCode, at: datetime, replacing: Subscription | None = None) -> None:
    """Count one use of a code for a new subscription, or raise `PromoCodeExhausted`.

    Runs in the subscribe's transaction, so a subscribe that fails later gives the use back.
    If `replacing` (the pending subscription this subscribe replaces) holds a use of the same
    code, that use is handed over instead of a new one taken. Record the redemption with
    `promo_redemption_record` once the new subscription exists.
    """
    if replacing is not None:
        handed_over = PromoRedemption.objects.filter(
            subscription=replacing, promo=promo, released_at__isnull=True
        ).update(released_at=at)
        if handed_over:
            return
    if _take_use(promo):
        return
    if _give_back_never_started(promo, at) and _take_use(promo):
        return
    raise PromoCodeExhausted(details={"promo_code": promo.code})


def promo_redemption_record(*, promo: PromoCode, subscription: Subscription) -> PromoRedemption:
    """Record the discount a code promises a subscription, copied so later edits change nothing."""
    return PromoRedemption.objects.create(
        promo=promo,
        account_id=subscription.account_id,
        subscription=subscription,
        kind=promo.kind,
        value=(promo.percent_off if promo.kind == PromoKind.PERCENT else promo.amount_off) or 0,
        currency=promo.currency,
        periods=promo.periods,
    )
