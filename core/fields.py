"""Model fields stamped by the billing clock, so every "now" a row records comes from one clock.

Django's `auto_now` and `auto_now_add` stamp rows with the real time while the domain reads
`core.clock.now()`; once the demo (or a test) moves the billing clock, a payment would be
created a month before it was paid. These fields behave like them (not editable, set on save)
but ask the billing clock, which is the real time in production.
"""

from typing import Any

from django.db import models

from core import clock


class CreatedAtField(models.DateTimeField):
    """When the row was first saved, on the billing clock (like `auto_now_add`)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("editable", False)
        kwargs.setdefault("blank", True)
        super().__init__(*args, **kwargs)

    def pre_save(self, model_instance: models.Model, add: bool) -> Any:
        if add and getattr(model_instance, self.attname) is None:
            setattr(model_instance, self.attname, clock.now())
        return super().pre_save(model_instance, add)

    def deconstruct(self) -> Any:
        name, path, args, kwargs = super().deconstruct()
        kwargs.pop("editable", None)
        kwargs.pop("blank", None)
        return name, path, args, kwargs


class UpdatedAtField(CreatedAtField):
    """When the row was last saved, on the billing clock (like `auto_now`).

    As with `auto_now`, a queryset's `update()` does not touch it: the caller names it.
    """

    def pre_save(self, model_instance: models.Model, add: bool) -> Any:
        setattr(model_instance, self.attname, clock.now())
        return super().pre_save(model_instance, add)
