"""No two write operations of one viewer collide: every pair, run at once, leaves a consistent state.

For each starting state (tests/concurrency/operations.py) and each pair of operations that
apply to it, a pair with itself included, each round builds a new viewer in that state, runs
both operations from two threads released together by a barrier (real PostgreSQL
connections), then checks, before and after reconciliation settles what Stripe knows:
- neither operation failed: no 5xx, no exception but the service's domain errors, no deadlock;
- the end state is consistent (`invariant_violations`): one live subscription per account,
  every charge Stripe accepted gives access or was refunded, refunds within amounts, checkout
  rows that agree with Stripe's pages, one payment per renewal period, no plan change applied
  without its charge paid and no change's charge kept for a change not applied.
Every round runs; a failing test lists each round's failures. The plan changes (an upgrade,
a scheduled downgrade) apply to the states where they, or the other operation, can change
something (about 180 pairs in all).
"""

import threading
from collections.abc import Callable
from typing import Any

import pytest

from payments.tests.concurrency import run_concurrently
from tests.concurrency.invariants import StripeView, invariant_violations, settle
from tests.concurrency.operations import OPERATIONS, STATES, World, operations_for, perform, scene_build

ROUNDS = 3


def _pairs() -> list[Any]:
    pairs = []
    for state in STATES:
        operations = operations_for(state)
        for index, first in enumerate(operations):
            for second in operations[index:]:
                pairs.append(
                    pytest.param(state, first.name, second.name, id=f"{state}:{first.name}+{second.name}")
                )
    return pairs


PAIRS = _pairs()


def _stripe_view(world: World, user_id: str) -> StripeView:
    # Found by the user id Stripe keeps on the customer, not by the id stored on the account:
    # a page opened for a customer whose id never reached the account is seen too.
    return StripeView.read(
        world.sandbox.objects, customers=StripeView.customers_of(world.sandbox.objects, [user_id])
    )


def _round(world: World, state: str, first: str, second: str, number: int) -> list[str]:
    scene = scene_build(state, world, f"{state}-{first}-{second}-{number}")
    operations = (first, second)
    go = threading.Barrier(len(operations))
    outcomes = run_concurrently(
        lambda index: perform(operations[index], scene, world, go=go), len(operations)
    )
    problems = [str(outcome) for outcome in outcomes if outcome.verdict == "failed"]
    problems += [
        f"before settling: {violation}"
        for violation in invariant_violations(
            view=_stripe_view(world, scene.user_id), account_ids=[scene.account_id], settled=False
        )
    ]
    settlement = settle()
    problems += [f"settling: {error}" for error in settlement.errors]
    problems += invariant_violations(
        view=_stripe_view(world, scene.user_id), account_ids=[scene.account_id], settled=True
    )
    if problems:
        problems.insert(0, "outcomes: " + " | ".join(str(outcome) for outcome in outcomes))
    return [f"round {number}: {problem}" for problem in problems]


@pytest.mark.parametrize(("state", "first", "second"), PAIRS)
def test_two_writes_at_once_leave_a_consistent_state(
    fresh_world: Callable[[], World], state: str, first: str, second: str
) -> None:
    problems = []
    for number in range(1, ROUNDS + 1):
        problems += _round(fresh_world(), state, first, second, number)
    assert not problems, f"{first} + {second} on {STATES[state].description}:\n" + "\n".join(problems)


def test_every_operation_applies_to_known_states_and_every_state_has_operations() -> None:
    assert all(operation.states and operation.states <= set(STATES) for operation in OPERATIONS.values())
    assert all(operations_for(state) for state in STATES)
    assert len(PAIRS) == sum(len(operations_for(s)) * (len(operations_for(s)) + 1) // 2 for s in STATES)
