from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class NotificationsConfig(AppConfig):
    name = "notifications"
    verbose_name = _("Notifications and events")

    def ready(self) -> None:
        # Billing and payments record facts; notifications, above them, listens.
        from notifications.listeners import listen

        listen()
