from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class LedgerConfig(AppConfig):
    name = "ledger"
    verbose_name = _("Ledger")

    def ready(self) -> None:
        # Payments and billing record facts; the ledger, above them, posts what they mean.
        from ledger.listeners import listen

        listen()
