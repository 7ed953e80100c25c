"""A fact reaches each listener once, in the recorder's call, until the listener stops listening."""

import pytest

from core.facts import Fact

heard: list[tuple[str, int]] = []


def ledger_listener(*, payment: int) -> None:
    heard.append(("ledger", payment))


def other_listener(*, payment: int) -> None:
    heard.append(("other", payment))


@pytest.fixture(autouse=True)
def _forget() -> None:
    heard.clear()


def test_each_listener_hears_a_fact_once_however_often_it_listens():
    fact = Fact("paid", "payment")
    fact.listen(ledger_listener)
    fact.listen(ledger_listener)

    fact.record(payment=1)

    assert heard == [("ledger", 1)]


def test_a_listener_that_stops_hears_nothing_and_the_others_still_do():
    fact = Fact("paid", "payment")
    fact.listen(ledger_listener)
    fact.listen(other_listener)

    fact.unlisten(ledger_listener)
    fact.unlisten(ledger_listener)  # not listening any more: left alone
    fact.record(payment=2)

    assert heard == [("other", 2)]


def test_a_fact_refuses_values_it_does_not_carry():
    with pytest.raises(TypeError, match="paid carries"):
        Fact("paid", "payment").record(amount=3)
