"""Reconciliation: put right what lost webhooks left undone, by asking Stripe.

Three jobs, each recorded as a `ReconciliationRun` with what it examined and what it fixed:
- `reconcile_pending_payments` (`pending`) re-reads from Stripe the checkouts and renewal
  charges still pending after a while, and applies what Stripe says through the same services
  the webhooks and the success page use (`checkout_sync`, `renewal_apply_intent`);
- `reconcile_events` (`events`) reads Stripe's event list on from where the last run stopped,
  stores the events we never received and feeds them (and stored ones never handled) to the
  webhook handlers;
- `reconcile_unbooked_charges` (`unbooked`) books the succeeded charges our rows do not show as
  paid.

All are safe to run twice, or next to the webhooks: every change they make goes through those
idempotent services, each in its own short transaction, so no lock is held over a call to
Stripe (which is also why a run is not one transaction). Two runs of one kind never overlap: a
run first takes its kind's lease (`ReconciliationCursor`, see `runs`), and a run that finds it
held is recorded as skipped.
"""

from payments.services.reconciliation.events import (
    EVENTS_OVERLAP,
    EVENTS_PAGE_SIZE,
    STUCK_EVENT_MAX_ATTEMPTS,
    STUCK_EVENTS_PER_RUN,
    reconcile_events,
)
from payments.services.reconciliation.pending import reconcile_pending_payments
from payments.services.reconciliation.runs import FIXES_KEPT, LEASE, LeaseLost
from payments.services.reconciliation.unbooked import (
    charge_settle_unbooked,
    reconcile_unbooked_charges,
    unbooked_charges_fixed,
    unbooked_charges_window,
)

__all__ = [
    "EVENTS_OVERLAP",
    "EVENTS_PAGE_SIZE",
    "FIXES_KEPT",
    "LEASE",
    "STUCK_EVENTS_PER_RUN",
    "STUCK_EVENT_MAX_ATTEMPTS",
    "LeaseLost",
    "charge_settle_unbooked",
    "reconcile_events",
    "reconcile_pending_payments",
    "reconcile_unbooked_charges",
    "unbooked_charges_fixed",
    "unbooked_charges_window",
]
