"""Domain code has one clock: `core.clock.now()`; nothing asks the real time behind its back.

A second clock makes the demo's (and the tests') moved billing clock lie: a payment created a
month before it was paid, a retry due at once, a lease that never runs out. These tests read
the domain modules (every module of the apps but the adapters, as .importlinter names them)
and fail naming each place that asks the real time, so no later change can bring one back.
"""

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
APPS = ["core", "accounts", "tariffs", "billing", "payments", "notifications"]

# Adapters hold no rule of their own (as in .importlinter): these folders anywhere in an app, these
# modules at its top (`payments/services/checkout/pages.py` is domain code); tests and migrations too.
ADAPTER_PARTS = {"tests", "migrations", "management", "admin", "api"}
ADAPTER_MODULES = {
    "api.py",
    "serializers.py",
    "admin.py",
    "admin_audit.py",
    "admin_overview.py",
    "tasks.py",
    "urls.py",
    "pages.py",
}
NOT_DOMAIN = {
    "core/clock.py",  # the one clock: the real time plus the offset
    "payments/dashboard/views.py",  # an adapter
}
# Fake providers keep their own time, as a real provider does (the sandbox follows the billing
# clock where Stripe's `created` stamps matter, and measures pages' lives on real time).
PROVIDERS_OWN_TIME = ("payments/sandbox/", "payments/gateways/memory/")

_CLOCK_OWNERS = {"timezone", "datetime", "date"}
_READS_OF_THE_TIME = {"now", "utcnow", "today", "localdate"}


def second_clocks(source: str) -> list[tuple[int, str]]:
    """Return each (line, expression) of `source` that asks the real time or stamps with it."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if (
            isinstance(node, ast.Attribute)
            and node.attr in _READS_OF_THE_TIME
            and _last_name(node.value) in _CLOCK_OWNERS
        ):
            found.append((node.lineno, f"{_last_name(node.value)}.{node.attr}"))
        elif isinstance(node, ast.keyword) and node.arg in {"auto_now", "auto_now_add"}:
            found.append((node.value.lineno, node.arg))
        elif isinstance(node, ast.ImportFrom) and node.module == "django.utils.timezone":
            found.extend(
                (node.lineno, f"from django.utils.timezone import {alias.name}")
                for alias in node.names
                if alias.name in _READS_OF_THE_TIME
            )
    return sorted(found)


def _last_name(node: ast.expr) -> str:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        return node.attr
    return ""


def domain_modules() -> list[str]:
    """Return the apps' domain modules, relative to the repository."""
    modules = []
    for app in APPS:
        for path in sorted((ROOT / app).rglob("*.py")):
            name = path.relative_to(ROOT).as_posix()
            folders = path.relative_to(ROOT).parts[1:-1]
            if (
                set(folders) & ADAPTER_PARTS
                or (not folders and path.name in ADAPTER_MODULES)
                or name in NOT_DOMAIN
                or name.startswith(PROVIDERS_OWN_TIME)
            ):
                continue
            modules.append(name)
    return modules


def test_domain_code_asks_only_the_billing_clock():
    offenders = [
        f"{name}:{line}: {what}"
        for name in domain_modules()
        for line, what in second_clocks((ROOT / name).read_text())
    ]
    assert not offenders, (
        "Domain code must ask core.clock.now() (and stamp rows with core.fields.CreatedAtField / "
        "UpdatedAtField), not the real time:\n" + "\n".join(offenders)
    )


def test_the_scan_reads_the_modules_that_decide():
    modules = domain_modules()

    for expected in [
        "billing/models.py",
        "billing/services.py",
        "payments/selectors.py",
        "payments/services/subscribe.py",
        "payments/services/checkout/pages.py",
        "payments/gateways/stripe.py",
        "notifications/services/notices.py",
        "core/days.py",
    ]:
        assert expected in modules
    assert not [m for m in modules if "/tests/" in m or "/migrations/" in m or "/sandbox/" in m]


@pytest.mark.parametrize(
    ("code", "found"),
    [
        ("from django.utils import timezone\nx = timezone.now()", "timezone.now"),
        ("import datetime\nx = datetime.datetime.now(datetime.UTC)", "datetime.now"),
        ("from datetime import datetime, UTC\nx = datetime.now(UTC)", "datetime.now"),
        ("from datetime import date\nx = date.today()", "date.today"),
        ("created = models.DateTimeField(auto_now_add=True)", "auto_now_add"),
        ("updated = models.DateTimeField(auto_now=True)", "auto_now"),
        ("stamped = models.DateTimeField(default=timezone.now)", "timezone.now"),
        ("from django.utils.timezone import now", "from django.utils.timezone import now"),
    ],
)
def test_a_second_clock_is_named(code, found):
    assert [what for _, what in second_clocks(code)] == [found]


def test_the_billing_clock_and_what_merely_mentions_the_time_pass():
    code = (
        '"""Unlike auto_now, and never timezone.now()."""\n'
        "from core import clock\n"
        "# not datetime.now(): the billing clock\n"
        "x = clock.now()\n"
        "y = timezone.localtime(x)\n"
        "created_at = CreatedAtField(_('created'))\n"
    )
    assert second_clocks(code) == []
