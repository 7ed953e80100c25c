"""The Celery application of the billing service.

Workers and beat start with `celery -A config ...`; configuration comes from Django
settings under the `CELERY_` prefix, so there is one place to read it.
"""

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.local")

app = Celery("billing")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
