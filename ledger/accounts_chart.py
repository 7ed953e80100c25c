"""The chart of accounts: the codes the ledger posts to, and which side each one grows on.

Every account exists once per currency (`LedgerAccount`, unique by code and currency); amounts
are never converted. Postings are signed: a debit is positive, a credit negative, and every
entry sums to zero per currency.

| code | what it holds | grows on |
| --- | --- | --- |
| `provider_clearing:<provider>` | money a provider has taken for us and not yet paid out | debit |
| `deferred_revenue` | money paid for service not yet given (owed to viewers) | credit |
| `revenue` | money earned: paid periods as their days pass | credit |
| `refunds` | earned money given back (contra-revenue) | debit |
| `provider_fees` | what the providers charged us | debit |
| `payouts:<provider>` | money a provider has paid out to the bank | debit |
"""

from typing import Literal

DEFERRED_REVENUE = "deferred_revenue"
REVENUE = "revenue"
REFUNDS = "refunds"
PROVIDER_FEES = "provider_fees"

NormalSide = Literal["debit", "credit"]


def provider_clearing(provider: str) -> str:
    """Return the code of the account of money held by `provider` for us."""
    return f"provider_clearing:{provider}"


def payouts(provider: str) -> str:
    """Return the code of the account of money `provider` has paid out to the bank."""
    return f"payouts:{provider}"


def normal_side(code: str) -> NormalSide:
    """Return the side an account grows on, by its code (for reports: balances shown positive)."""
    return "credit" if code in (DEFERRED_REVENUE, REVENUE) else "debit"
