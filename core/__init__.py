"""What every app of the billing service shares: money, the one clock, UTC days, domain
errors, the audit entry writer, admin and API building blocks. It imports no other app."""
