"""The project package as an app, so that its system checks are registered at start."""

from django.apps import AppConfig


class ConfigConfig(AppConfig):
    name = "config"
    verbose_name = "Service configuration"

    def ready(self) -> None:
        # Registers the deployment checks of the service's settings (config/checks.py), and
        # connects a Celery worker's own metrics endpoint (config/metrics_worker.py).
        from config import checks, metrics_worker  # noqa: F401
