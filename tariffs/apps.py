from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class TariffsConfig(AppConfig):
    name = "tariffs"
    verbose_name = _("Tariffs")

    def ready(self) -> None:
        """Log every change of a tariff or promo code to the audit log, with the staff member who made it.

        Managers edit these rows in admin, where auditlog's middleware puts the signed-in user
        on each entry. Timestamps and the use counter are left out: the counter moves by a
        conditional UPDATE on every subscribe (tariffs.services), which no signal sees anyway,
        and would otherwise flood the log with the system's own doing.
        """
        from auditlog.registry import auditlog

        from tariffs.models import PromoCode, Tariff

        auditlog.register(Tariff, exclude_fields=["created_at", "updated_at"])
        auditlog.register(
            PromoCode,
            exclude_fields=["created_at", "updated_at", "times_redeemed"],
            m2m_fields={"tariffs"},
        )
