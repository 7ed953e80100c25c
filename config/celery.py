"""The Celery application of the billing service.

Workers and beat start with `celery -A config ...`; configuration comes from Django
settings under the `CELERY_` prefix, so there is one place to read it.
"""

import os
from typing import Any

from celery import Celery, signals

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.local")

app = Celery("billing")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


@signals.worker_init.connect
@signals.beat_init.connect
def refuse_to_start_if_misconfigured(**kwargs: Any) -> None:
    """Stop a worker or beat under production settings whose configuration has errors."""
    import django
    from django.apps import apps

    if not apps.ready:  # Celery's Django fixup may not have set Django up yet
        django.setup()
    from config.checks import refuse_to_start_if_misconfigured as check

    check()
