"""Email and event settings come from the environment under their own names."""

import json
import os
import subprocess
import sys

from billing.tests.workers import ROOT

PRINT_SETTINGS = """
import json
from django.conf import settings
print(json.dumps({
    "backend": settings.EMAIL_BACKEND,
    "host": settings.EMAIL_HOST,
    "file_path": settings.EMAIL_FILE_PATH,
    "endpoints": settings.EVENT_ENDPOINTS,
}))
"""


def settings_under(module: str, **environment: str) -> subprocess.CompletedProcess[str]:
    keep = {name: value for name, value in os.environ.items() if not name.startswith(("EMAIL_", "EVENT_"))}
    return subprocess.run(  # noqa: S603 - our own interpreter and code
        [sys.executable, "-c", PRINT_SETTINGS],
        cwd=ROOT,
        env={**keep, "DJANGO_SETTINGS_MODULE": module, **environment},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_make_run_prints_emails_unless_told_otherwise():
    default = settings_under("config.settings.local")
    to_files = settings_under(
        "config.settings.local",
        EMAIL_BACKEND="django.core.mail.backends.filebased.EmailBackend",
        EMAIL_FILE_PATH="var/test-mail",
    )

    assert json.loads(default.stdout)["backend"] == "config.mail.DemoFileEmailBackend"
    assert json.loads(to_files.stdout)["backend"] == "django.core.mail.backends.filebased.EmailBackend"
    assert json.loads(to_files.stdout)["file_path"] == "var/test-mail"


def test_event_endpoints_are_a_list_of_urls_or_json():
    listed = settings_under(
        "config.settings.local",
        EVENT_ENDPOINTS="https://a.internal/events, https://b.internal/events",
        EVENT_SIGNING_SECRET="whsec_x",
    )
    detailed = settings_under(
        "config.settings.local",
        EVENT_ENDPOINTS='[{"url": "https://a.internal/events", "event_types": ["access.granted"], "secret": "s"}]',
    )

    assert json.loads(listed.stdout)["endpoints"] == [
        {"url": "https://a.internal/events"},
        {"url": "https://b.internal/events"},
    ]
    assert json.loads(detailed.stdout)["endpoints"][0]["event_types"] == ["access.granted"]


def test_event_endpoints_without_a_secret_are_refused_at_start():
    refused = settings_under("config.settings.local", EVENT_ENDPOINTS="https://a.internal/events")

    assert refused.returncode != 0
    assert "EVENT_ENDPOINTS needs EVENT_SIGNING_SECRET" in refused.stderr
