"""Admin of the books: read-only accounts and entries, accounting's reports and the journal's export,
and the ledger's daily self-checks (ledger/admin_checks.py).

Importing the package registers every model's admin (Django's autodiscover imports it).
"""

from ledger import admin_checks
from ledger.admin import accounts, entries

__all__ = ["accounts", "admin_checks", "entries"]
