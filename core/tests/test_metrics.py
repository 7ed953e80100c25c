"""Counting never gets in the way of the work counted."""

import logging

import pytest

from core.metrics import counts_renewals, never_raises


def test_a_failing_count_is_logged_once_and_never_raised(caplog):
    @never_raises
    def record_on_a_full_disk() -> None:
        raise OSError(28, "No space left on device")

    with caplog.at_level(logging.ERROR, logger="core.metrics"):
        record_on_a_full_disk()
        record_on_a_full_disk()

    assert [record.getMessage() for record in caplog.records] == [
        "metrics: record_on_a_full_disk failed; the work goes on uncounted"
    ]


def test_a_counted_run_returns_its_outcome_and_raises_its_error():
    @counts_renewals
    def run(*, fail: bool) -> str:
        if fail:
            raise LookupError("gone")
        return "renewed"

    assert run(fail=False) == "renewed"
    with pytest.raises(LookupError, match="gone"):
        run(fail=True)
