"""Facts the domain records as they happen, for whoever listens.

The subscription engine and the payments core say what happened ("a payment succeeded",
"a subscription's status changed") without knowing who cares: the layer above them
(notifications: emails to viewers, signed events to the cinema's services) listens. So the
apps import one way, and a new listener is added without touching the money paths.

A fact is recorded inside the transaction that made it true and its listeners run there and
then, synchronously: what they write (a notice, an outbox row) commits or rolls back with the
fact, and an error in a listener fails the transaction as it would in the caller's own code.
Built on Django's signals (`django.dispatch.Signal`).
"""

from collections.abc import Callable
from typing import Any

from django.dispatch import Signal


class Fact:
    """One kind of fact, with the names of the values it carries (keyword arguments)."""

    def __init__(self, name: str, *fields: str) -> None:
        self.name = name
        self.fields = frozenset(fields)
        self._signal = Signal()

    def __repr__(self) -> str:
        return f"Fact({self.name!r})"

    def listen(self, listener: Callable[..., None]) -> None:
        """Call `listener(**values)` each time the fact is recorded (once per listener)."""

        def receive(sender: object, **values: Any) -> None:
            values.pop("signal", None)
            listener(**values)

        self._signal.connect(receive, weak=False, dispatch_uid=self._uid(listener))

    def unlisten(self, listener: Callable[..., None]) -> None:
        """Stop calling `listener` (a listener not connected is left alone)."""
        self._signal.disconnect(dispatch_uid=self._uid(listener))

    def _uid(self, listener: Callable[..., None]) -> str:
        return f"{self.name}:{listener.__module__}.{listener.__qualname__}"

    def record(self, **values: Any) -> None:
        """Tell every listener, in this transaction; a listener's error propagates."""
        if set(values) != self.fields:
            raise TypeError(f"{self.name} carries {sorted(self.fields)}, not {sorted(values)}")
        self._signal.send(sender=self, **values)
