"""Tell the web processes' access caches of every committed change to what access is read from.

PostgreSQL only (LISTEN/NOTIFY; a no-op on SQLite, where the cache is off). Payloads on the
`billing_access` channel, read by billing/access_cache.py:

- `a:<account id>`: a subscription of that account was inserted, updated or deleted (old and
  new account when it moves), or the billing account itself was updated or deleted;
- `*`: a tariff was updated or deleted (the answer shows its slug and name), or one of the
  three tables was truncated: forget everything.

NOTIFY is delivered at commit and dropped on rollback, and identical payloads within one
transaction are sent once.
"""

from django.db import migrations

CHANNEL = "billing_access"

FORWARD = f"""
CREATE OR REPLACE FUNCTION billing_access_notify_subscription() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP IN ('UPDATE', 'DELETE') THEN
        PERFORM pg_notify('{CHANNEL}', 'a:' || OLD.account_id);
    END IF;
    IF TG_OP IN ('INSERT', 'UPDATE') THEN
        PERFORM pg_notify('{CHANNEL}', 'a:' || NEW.account_id);
    END IF;
    RETURN NULL;
END;
$$;

CREATE OR REPLACE FUNCTION billing_access_notify_account() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('{CHANNEL}', 'a:' || OLD.id);
    RETURN NULL;
END;
$$;

CREATE OR REPLACE FUNCTION billing_access_notify_all() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('{CHANNEL}', '*');
    RETURN NULL;
END;
$$;

CREATE TRIGGER billing_access_notify
    AFTER INSERT OR UPDATE OR DELETE ON billing_subscription
    FOR EACH ROW EXECUTE FUNCTION billing_access_notify_subscription();
CREATE TRIGGER billing_access_notify
    AFTER UPDATE OR DELETE ON accounts_billingaccount
    FOR EACH ROW EXECUTE FUNCTION billing_access_notify_account();
CREATE TRIGGER billing_access_notify
    AFTER UPDATE OR DELETE ON tariffs_tariff
    FOR EACH ROW EXECUTE FUNCTION billing_access_notify_all();
CREATE TRIGGER billing_access_notify_truncate
    AFTER TRUNCATE ON billing_subscription
    FOR EACH STATEMENT EXECUTE FUNCTION billing_access_notify_all();
CREATE TRIGGER billing_access_notify_truncate
    AFTER TRUNCATE ON accounts_billingaccount
    FOR EACH STATEMENT EXECUTE FUNCTION billing_access_notify_all();
CREATE TRIGGER billing_access_notify_truncate
    AFTER TRUNCATE ON tariffs_tariff
    FOR EACH STATEMENT EXECUTE FUNCTION billing_access_notify_all();
"""

BACKWARD = """
DROP TRIGGER IF EXISTS billing_access_notify_truncate ON tariffs_tariff;
DROP TRIGGER IF EXISTS billing_access_notify_truncate ON accounts_billingaccount;
DROP TRIGGER IF EXISTS billing_access_notify_truncate ON billing_subscription;
DROP TRIGGER IF EXISTS billing_access_notify ON tariffs_tariff;
DROP TRIGGER IF EXISTS billing_access_notify ON accounts_billingaccount;
DROP TRIGGER IF EXISTS billing_access_notify ON billing_subscription;
DROP FUNCTION IF EXISTS billing_access_notify_all();
DROP FUNCTION IF EXISTS billing_access_notify_account();
DROP FUNCTION IF EXISTS billing_access_notify_subscription();
"""


def _on_postgresql(statements: str):
    def run(apps, schema_editor):
        if schema_editor.connection.vendor == "postgresql":
            schema_editor.execute(statements)

    return run


class Migration(migrations.Migration):
    dependencies = [
        ("billing", "0006_admin_dashboard_indexes"),
        ("accounts", "0001_initial"),
        ("tariffs", "0001_initial"),
    ]

    operations = [
        migrations.RunPython(_on_postgresql(FORWARD), _on_postgresql(BACKWARD), elidable=False),
    ]
