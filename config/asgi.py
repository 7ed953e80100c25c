"""ASGI entry point."""

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.local")

application = get_asgi_application()

# Under production settings a misconfigured process fails here, before serving anyone.
from config.checks import refuse_to_start_if_misconfigured  # noqa: E402 - needs the apps loaded

refuse_to_start_if_misconfigured()
