"""The rule that decides whether a subscription gives access right now."""

from datetime import datetime, timedelta

from billing.models import SubscriptionStatus

S = SubscriptionStatus


def grants_access(
    *,
    status: str,
    current_period_end: datetime | None,
    will_renew: bool,
    now: datetime,
    grace: timedelta,
) -> bool:
    """Return whether a subscription in this state gives access at `now`.

    Trialing and active subscriptions give access to the end of their period, and for the
    grace period after it when they are about to renew (the renewal may still be in
    flight). A past-due subscription keeps access for the grace period after the period it
    failed to renew. Anything else gives none.
    """
    if current_period_end is None:
        return False
    if status in (S.TRIALING, S.ACTIVE):
        return now < current_period_end or (will_renew and now < current_period_end + grace)
    if status == S.PAST_DUE:
        return now < current_period_end + grace
    return False
