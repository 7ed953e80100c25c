"""`manage.py check --deploy` names every setting that would break production, and production
processes refuse to start while one is wrong."""

import os
import secrets
import subprocess
import sys
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from django.core.checks import run_checks
from django.test import override_settings

ROOT = Path(__file__).resolve().parents[2]
LONG = "x" * 32
# Settings under which every check of ours passes; each test breaks one of them.
SOUND = {
    "SECRET_KEY": secrets.token_urlsafe(50),
    "AUTH_JWT_ALGORITHM": "HS256",
    "AUTH_JWT_SECRET": LONG,
    "AUTH_JWT_PUBLIC_KEY": "",
    "STRIPE_SECRET_KEY": "sk_live_x",
    "STRIPE_WEBHOOK_SECRET": "whsec_x",
    "BILLING_SERVICE_KEYS": [LONG],
    "EVENT_ENDPOINTS": [],
    "EVENT_SIGNING_SECRET": "",
    "TRUSTED_PROXY_IPS": ["10.0.0.0/8"],
    "SECURE_SSL_REDIRECT": True,
    "SECURE_PROXY_SSL_HEADER": ("HTTP_X_FORWARDED_PROTO", "https"),
    "CACHES": {
        "default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": "redis://x/2"}
    },
}


def our_messages(**changes: object) -> dict[str, str]:
    """Return {check id: hint} of the billing deployment checks under sound settings plus `changes`."""
    with override_settings(**{**SOUND, **changes}):
        messages = run_checks(include_deployment_checks=True)
    return {
        str(message.id): str(message.hint) for message in messages if str(message.id).startswith("billing.")
    }


def public_key_pem() -> str:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048).public_key()
    return key.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    ).decode()


def test_sound_settings_pass_every_check():
    assert our_messages() == {}


def test_checks_run_only_as_deployment_checks():
    with override_settings(**{**SOUND, "STRIPE_SECRET_KEY": ""}):
        assert not [m for m in run_checks() if (m.id or "").startswith("billing.")]


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        ({"SECRET_KEY": ""}, "billing.E001"),
        ({"SECRET_KEY": "short"}, "billing.E001"),
        ({"AUTH_JWT_ALGORITHM": "HS512"}, "billing.E002"),
        ({"AUTH_JWT_SECRET": ""}, "billing.E003"),
        ({"AUTH_JWT_SECRET": "x" * 31}, "billing.E003"),
        ({"AUTH_JWT_ALGORITHM": "RS256", "AUTH_JWT_PUBLIC_KEY": ""}, "billing.E004"),
        (
            {"AUTH_JWT_ALGORITHM": "RS256", "AUTH_JWT_PUBLIC_KEY": "-----BEGIN PUBLIC KEY-----\nnope\n"},
            "billing.E004",
        ),
        ({"STRIPE_SECRET_KEY": ""}, "billing.E005"),
        ({"STRIPE_WEBHOOK_SECRET": " "}, "billing.E006"),
        ({"BILLING_SERVICE_KEYS": [LONG, ""]}, "billing.E007"),
        ({"BILLING_SERVICE_KEYS": ["short-key"]}, "billing.E007"),
        ({"EVENT_ENDPOINTS": [{"url": "https://cinema.example/events"}]}, "billing.E008"),
        ({"TRUSTED_PROXY_IPS": ["10.0.0.0/8", "proxy.internal"]}, "billing.E009"),
        ({"MIDDLEWARE": ["django.middleware.security.SecurityMiddleware"]}, "billing.E010"),
        ({"DEFAULT_PAYMENT_PROVIDER": "yookassa"}, "billing.E011"),
        (
            {
                "PAYMENT_PROVIDERS": {
                    "stripe": "payments.gateways.stripe_setup.gateway_from_settings",
                    "x": "no.such",
                }
            },
            "billing.E011",
        ),
        ({"BILLING_SERVICE_KEYS": []}, "billing.W001"),
        ({"TRUSTED_PROXY_IPS": []}, "billing.W002"),
        ({"TRUSTED_PROXY_IPS": ["0.0.0.0/0"]}, "billing.W003"),
        (
            {"CACHES": {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}},
            "billing.W004",
        ),
    ],
    ids=lambda value: value if isinstance(value, str) else ",".join(value),
)
def test_each_misconfiguration_is_named_with_a_hint(changes, expected):
    messages = our_messages(**changes)
    assert list(messages) == [expected]
    assert messages[expected]


def test_stripes_keys_are_not_asked_for_when_stripe_is_not_a_provider():
    messages = our_messages(
        PAYMENT_PROVIDERS={"other": "payments.tests.test_gateway_registry.other_provider_gateway"},
        DEFAULT_PAYMENT_PROVIDER="other",
        STRIPE_SECRET_KEY="",
        STRIPE_WEBHOOK_SECRET="",
    )

    assert messages == {}


def test_rs256_with_a_readable_public_key_passes_without_a_secret():
    assert (
        our_messages(AUTH_JWT_ALGORITHM="RS256", AUTH_JWT_PUBLIC_KEY=public_key_pem(), AUTH_JWT_SECRET="")
        == {}
    )


def test_an_endpoint_with_its_own_secret_needs_no_shared_one():
    endpoints = [{"url": "https://cinema.example/events", "secret": LONG}]
    assert our_messages(EVENT_ENDPOINTS=endpoints) == {}


def test_no_forwarding_header_means_no_proxy_to_guard():
    assert our_messages(SECURE_PROXY_SSL_HEADER=None, TRUSTED_PROXY_IPS=[], MIDDLEWARE=[]) == {}


# --- production processes refuse to start ----------------------------------------------------


def production_environment(**overrides: str) -> dict[str, str]:
    """Return a complete production environment (no connection is made), with `overrides`."""
    environment = {
        "PATH": os.environ.get("PATH", ""),
        "DJANGO_SETTINGS_MODULE": "config.settings.production",
        "DJANGO_SECRET_KEY": secrets.token_urlsafe(50),
        "DATABASE_URL": "postgres://postgres@127.0.0.1:5432/billing_unused",
        "CACHE_URL": "redis://127.0.0.1:6379/2",
        "CELERY_BROKER_URL": "redis://127.0.0.1:6379/11",
        "AUTH_JWT_SECRET": secrets.token_urlsafe(32),
        "STRIPE_SECRET_KEY": "sk_test_start_check",
        "STRIPE_WEBHOOK_SECRET": "whsec_start_check",
        "BILLING_SERVICE_KEYS": secrets.token_urlsafe(32),
        "TRUSTED_PROXY_IPS": "10.0.0.0/8",
    }
    return {**environment, **overrides}


def load_wsgi_application(environment: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", "import config.wsgi"],
        cwd=ROOT,
        env=environment,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_web_process_starts_when_the_configuration_is_sound():
    result = load_wsgi_application(production_environment())
    assert result.returncode == 0, result.stderr


def test_web_process_refuses_to_start_without_the_jwt_secret():
    result = load_wsgi_application(production_environment(AUTH_JWT_SECRET=""))
    assert result.returncode != 0
    assert "ImproperlyConfigured" in result.stderr
    assert "billing.E003" in result.stderr


def test_deploy_check_fails_without_stripe_keys():
    result = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--tag", "billing"],
        cwd=ROOT,
        env=production_environment(STRIPE_SECRET_KEY="", STRIPE_WEBHOOK_SECRET=""),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode != 0
    assert "billing.E005" in result.stderr
    assert "billing.E006" in result.stderr
