"""What the subscription engine records as it happens (core/facts.py): notifications listens."""

from core.facts import Fact

subscription_status_changed = Fact("subscription_status_changed", "subscription", "previous")
subscription_renewed = Fact("subscription_renewed", "subscription")
subscription_canceled = Fact("subscription_canceled", "subscription")
subscription_extended = Fact("subscription_extended", "subscription", "previous_period_end", "days")
# A plan change took effect: an upgrade now, or a scheduled downgrade at the renewal.
subscription_changed = Fact(
    "subscription_changed", "subscription", "previous_tariff", "kind", "amount_due", "effective_at"
)
