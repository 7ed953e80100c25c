"""Load the demo: tariffs, staff logins and a demo viewer, then print where everything is.

Demo data only: it never runs from a migration and refuses to run under production settings.
"""

import os
from typing import Any

from django.conf import settings
from django.contrib.auth.models import Group, User
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import transaction

from accounts.services import account_get_or_create
from accounts.tokens import issue_token
from payments.gateways import configured_providers
from tariffs.models import PeriodUnit, Tariff

DEMO_PASSWORD = "billing-demo"  # noqa: S105 (a published demo password, never used in production)
DEMO_VIEWER_ID = "demo-viewer"
DEMO_VIEWER_EMAIL = "viewer@example.com"
# Staff login → the role group it belongs to (groups come from the accounts migrations).
DEMO_STAFF = {"manager": "Manager", "support": "Support", "accountant": "Accounting"}
DEMO_TARIFFS: list[dict[str, Any]] = [
    {
        "slug": "monthly",
        "name": "Monthly",
        "description": "Every film and series in HD, billed every month.",
        "name_ru": "Месячная",
        "description_ru": "Все фильмы и сериалы в HD, оплата каждый месяц.",  # noqa: RUF001 - Russian
        "amount": 39900,
        "period_unit": PeriodUnit.MONTH,
        "trial_days": 0,
        "is_active": True,
        "display_order": 10,
    },
    {
        "slug": "yearly",
        "name": "Yearly",
        "description": "Twelve months for the price of ten, with a 7-day free trial.",
        "name_ru": "Годовая",
        "description_ru": "Двенадцать месяцев по цене десяти и 7 дней бесплатно.",
        "amount": 399000,
        "period_unit": PeriodUnit.YEAR,
        "trial_days": 7,
        "is_active": True,
        "display_order": 20,
    },
    {
        # Paid through YooKassa (its offline sandbox under `make run`), in roubles with a receipt.
        "slug": "monthly-yookassa",
        "name": "Monthly (YooKassa)",
        "description": "Every film and series in HD, billed every month through YooKassa.",
        "name_ru": "Месячная (ЮKassa)",
        "description_ru": "Все фильмы и сериалы в HD, оплата каждый месяц через ЮKassa.",  # noqa: RUF001 - Russian
        "amount": 39900,
        "currency": "RUB",
        "provider": "yookassa",
        "period_unit": PeriodUnit.MONTH,
        "trial_days": 0,
        "is_active": True,
        "display_order": 15,
    },
    {
        "slug": "legacy-monthly",
        "name": "Monthly (2024 price)",
        "description": "No longer sold; kept for viewers who subscribed before.",
        "name_ru": "Месячная (цена 2024 года)",
        "description_ru": "Больше не продаётся; сохранена для тех, кто подписался раньше.",
        "amount": 29900,
        "period_unit": PeriodUnit.MONTH,
        "trial_days": 0,
        "is_active": False,
        "display_order": 90,
    },
]


class Command(BaseCommand):
    help = "Create demo tariffs, staff users and a demo viewer (idempotent), and print the logins."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--base-url", default=settings.PUBLIC_BASE_URL)

    def handle(self, *args: Any, **options: Any) -> None:
        if getattr(settings, "BILLING_PRODUCTION", False):
            raise CommandError("Demo data is never loaded under production settings.")
        with transaction.atomic():
            for tariff in DEMO_TARIFFS:
                if tariff.get("provider", "stripe") not in configured_providers():
                    continue  # e.g. YooKassa, when this run has neither its sandbox nor a shop
                Tariff.objects.update_or_create(slug=tariff["slug"], defaults=tariff)
            for username, group_name in DEMO_STAFF.items():
                self._staff_user(username, group_name)
            account_get_or_create(user_id=DEMO_VIEWER_ID, email=DEMO_VIEWER_EMAIL)
        token = issue_token(user_id=DEMO_VIEWER_ID, email=DEMO_VIEWER_EMAIL, ttl_seconds=30 * 24 * 3600)
        self._print_banner(options["base_url"].rstrip("/"), token)

    def _staff_user(self, username: str, group_name: str) -> None:
        user, _ = User.objects.get_or_create(username=username, defaults={"is_staff": True})
        user.is_staff = True
        user.email = f"{username}@example.com"
        user.set_password(DEMO_PASSWORD)
        user.save()
        group = Group.objects.filter(name=group_name).first()
        if group is not None:
            user.groups.add(group)

    def _print_banner(self, base: str, token: str) -> None:
        logins = ", ".join(DEMO_STAFF)
        lines = [
            "",
            "Cinema billing is starting (Ctrl-C stops web, worker, beat and the Stripe sandbox).",
            f"  Storefront    {base}/   (subscribe as the demo viewer; test card 4242 4242 4242 4242)",
            f"  API docs      {base}/api/docs/",
            f"  Admin         {base}/admin/   logins: {logins} / password: {DEMO_PASSWORD}",
            f"  Health        {base}/healthz/  {base}/readyz/",
            f"  Demo viewer   {DEMO_VIEWER_ID} ({DEMO_VIEWER_EMAIL}), token valid 30 days:",
            f"    {token}",
            f"  Try it        curl -H 'Authorization: Bearer {token[:16]}…' {base}/api/v1/access/",
        ]
        if settings.BILLING_SERVICE_KEYS:
            key = settings.BILLING_SERVICE_KEYS[0]
            lines.append(
                f"  Service key   curl -H 'X-Service-Key: {key}' {base}/api/v1/internal/access/{DEMO_VIEWER_ID}/"
            )
        if settings.EMAIL_BACKEND == "config.mail.DemoFileEmailBackend":
            lines.append(
                f"  Emails        written to {_shown_path(settings.EMAIL_FILE_PATH)}/, one line each below"
            )
        lines += [
            "  Billing clock .venv/bin/python manage.py billing_advance --days 30   (in another terminal)",
            "",
        ]
        self.stdout.write("\n".join(lines))


def _shown_path(path: str) -> str:
    """Return a path relative to the working directory when it is inside it."""
    relative = os.path.relpath(path)
    return path if relative.startswith("..") else relative
