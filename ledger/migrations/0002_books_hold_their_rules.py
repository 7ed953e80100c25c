"""The database itself keeps the books' rules, whatever code writes to them.

- Entries and postings are append-only: an UPDATE or DELETE is refused (a correction is a
  reversing entry). TRUNCATE, which only a test database's reset uses, is not a row change.
- Every entry sums to zero per currency, checked when the transaction commits (a deferred
  constraint trigger, so an entry's postings may be inserted one by one).
- A posting's currency is its account's.

PostgreSQL holds all three; SQLite (`make run`) holds the first, and the posting service
checks the others for both.
"""

from django.db import migrations

POSTGRESQL = [
    """
    CREATE FUNCTION ledger_refuse_change() RETURNS trigger AS $$
    BEGIN
        RAISE EXCEPTION 'ledger rows are append-only: % on % refused', TG_OP, TG_TABLE_NAME
            USING ERRCODE = 'restrict_violation';
    END
    $$ LANGUAGE plpgsql
    """,
    """
    CREATE TRIGGER journal_entry_append_only BEFORE UPDATE OR DELETE ON ledger_journalentry
    FOR EACH ROW EXECUTE FUNCTION ledger_refuse_change()
    """,
    """
    CREATE TRIGGER posting_append_only BEFORE UPDATE OR DELETE ON ledger_posting
    FOR EACH ROW EXECUTE FUNCTION ledger_refuse_change()
    """,
    """
    CREATE FUNCTION ledger_entry_balanced() RETURNS trigger AS $$
    DECLARE
        unbalanced text;
    BEGIN
        IF NEW.currency <> (SELECT currency FROM ledger_ledgeraccount WHERE id = NEW.account_id) THEN
            RAISE EXCEPTION 'posting % is in %, its account is not', NEW.id, NEW.currency
                USING ERRCODE = 'check_violation';
        END IF;
        SELECT currency INTO unbalanced FROM ledger_posting
            WHERE entry_id = NEW.entry_id GROUP BY currency HAVING SUM(amount) <> 0 LIMIT 1;
        IF unbalanced IS NOT NULL THEN
            RAISE EXCEPTION 'journal entry % does not balance in %', NEW.entry_id, unbalanced
                USING ERRCODE = 'check_violation';
        END IF;
        RETURN NULL;
    END
    $$ LANGUAGE plpgsql
    """,
    """
    CREATE CONSTRAINT TRIGGER posting_entry_balanced AFTER INSERT ON ledger_posting
    DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION ledger_entry_balanced()
    """,
]
POSTGRESQL_REVERSE = [
    "DROP TRIGGER posting_entry_balanced ON ledger_posting",
    "DROP FUNCTION ledger_entry_balanced()",
    "DROP TRIGGER posting_append_only ON ledger_posting",
    "DROP TRIGGER journal_entry_append_only ON ledger_journalentry",
    "DROP FUNCTION ledger_refuse_change()",
]
SQLITE = [
    f"""
    CREATE TRIGGER {table}_append_only_{op.lower()} BEFORE {op} ON {table}
    BEGIN SELECT RAISE(ABORT, 'ledger rows are append-only'); END
    """
    for table in ("ledger_journalentry", "ledger_posting")
    for op in ("UPDATE", "DELETE")
]
SQLITE_REVERSE = [
    f"DROP TRIGGER {table}_append_only_{op.lower()}"
    for table in ("ledger_journalentry", "ledger_posting")
    for op in ("UPDATE", "DELETE")
]


def _run(statements: dict[str, list[str]]):
    def run(apps, schema_editor):
        for statement in statements.get(schema_editor.connection.vendor, []):
            schema_editor.execute(statement, params=None)

    return run


class Migration(migrations.Migration):
    dependencies = [("ledger", "0001_initial")]

    operations = [
        migrations.RunPython(
            _run({"postgresql": POSTGRESQL, "sqlite": SQLITE}),
            _run({"postgresql": POSTGRESQL_REVERSE, "sqlite": SQLITE_REVERSE}),
        )
    ]
