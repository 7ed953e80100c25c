"""Reconciliation: put right what lost webhooks left undone, by asking the provider.

Three jobs, each run for one provider at a time (the default one unless named; the beat tasks
and the `reconcile` command run every configured provider) and recorded as a
`ReconciliationRun` of that provider with what it examined and what it fixed:
- `reconcile_pending_payments` (`pending`) re-reads from the provider its checkouts and renewal
  charges still pending after a while, and applies what it says through the same services
  the webhooks and the success page use (`checkout_sync`, `renewal_apply_intent`);
- `reconcile_events` (`events`) reads the provider's event list on from where its last run
  stopped, stores the events we never received and feeds them (and stored ones never handled)
  to the webhook handlers;
- `reconcile_unbooked_charges` (`unbooked`) books the provider's succeeded charges our rows do
  not show as paid.

All are safe to run twice, or next to the webhooks: every change they make goes through those
idempotent services, each in its own short transaction, so no lock is held over a call to the
provider (which is also why a run is not one transaction). Two runs of one kind and provider
never overlap: a run first takes the lease of its kind and provider (`ReconciliationCursor`,
see `runs`), and a run that finds it held is recorded as skipped.
"""

from payments.services.reconciliation.events import (
    EVENTS_OVERLAP,
    EVENTS_PAGE_SIZE,
    STUCK_EVENT_MAX_ATTEMPTS,
    STUCK_EVENTS_PER_RUN,
    reconcile_events,
)
from payments.services.reconciliation.pending import reconcile_pending_payments
from payments.services.reconciliation.runs import FIXES_KEPT, LEASE, LeaseLost, reconciliation_provider
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
    "reconciliation_provider",
    "unbooked_charges_fixed",
    "unbooked_charges_window",
]
