"""Refunds made by staff and refund requests made by viewers, by what each module does.

Money path of one refund, so that no double click, second agent or retry refunds twice:
1. under the payment's row lock, what is left is computed counting every refund that is
   awaiting approval, pending or succeeded, and the Refund row is written (reserving that
   amount) and committed (`staff.py`);
2. outside any lock, the provider is asked with the idempotency key `refund:<refund id>`, so
   a repeated call for the same row returns the same refund (`provider_answers.py`);
3. the answer is applied under the lock: succeeded moves `refunded_amount` forward,
   pending waits for the provider's event, failed releases the amount (`provider_answers.py`).

Locks follow the service's one order, account → subscription → payment → refund request →
refund, so that two staff members deciding at once, or a decision racing a webhook, wait
for each other instead of deadlocking. A transaction that may move the refunded amount,
end access or tell the viewer (all write to the subscription: its outbox, its status, its
notices) locks the subscription before the payment (`payment_lock_for_refund`).

Every step a staff member takes (a refund, its approval or rejection, a viewer's request
approved or rejected) is recorded in the audit log (core.audit) in its transaction, and so
is what the provider's immediate answer moved (refund and payment status, refunded amount, access);
what webhooks move later is the system's doing and is not.

- `rules.py`: what is left to refund, what needs an approval, what ends access (reads);
- `staff.py`: a staff member's refund, written once per form and sent;
- `provider_answers.py`: sending a refund to the provider and applying its answer, and the
  refunds its events report;
- `approvals.py`: a second staff member approves or rejects a refund above the threshold;
- `viewer_requests.py`: viewers ask for a refund, support approves or rejects.
"""
