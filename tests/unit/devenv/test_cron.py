"""The local runtime's reading of EventBridge Scheduler expressions."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from devenv.cron import Schedule, ScheduleError


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def test_daily_cron_fires_at_its_hour_the_next_day_once_past() -> None:
    schedule = Schedule("cron(0 2 * * ? *)")
    assert schedule.next_after(at("2024-05-01T01:59:30")) == at("2024-05-01T02:00:00")
    assert schedule.next_after(at("2024-05-01T02:00:00")) == at("2024-05-02T02:00:00")


def test_weekday_names_ranges_and_steps() -> None:
    schedule = Schedule("cron(*/15 9-17 ? * MON-FRI *)")
    assert schedule.next_after(at("2024-05-03T17:50:00")) == at("2024-05-06T09:00:00")  # Friday → Monday
    assert schedule.next_after(at("2024-05-06T09:07:00")) == at("2024-05-06T09:15:00")


def test_a_start_with_a_step_of_one_runs_to_the_end_of_the_field() -> None:
    assert Schedule("cron(5/1 * * * ? *)").next_after(at("2024-05-01T00:10:00")) == at("2024-05-01T00:11:00")
    assert Schedule("cron(0 10/1 * * ? *)").next_after(at("2024-05-01T11:10:00")) == at("2024-05-01T12:00:00")
    assert Schedule("cron(0 10/1 * * ? *)").next_after(at("2024-05-01T09:10:00")) == at("2024-05-01T10:00:00")


def test_last_day_of_month_and_time_zone() -> None:
    assert Schedule("cron(30 23 L * ? *)").next_after(at("2024-02-10T00:00:00")) == at("2024-02-29T23:30:00")
    fired = Schedule("cron(0 2 * * ? *)", "Europe/Paris").next_after(at("2024-07-01T12:00:00"))
    assert fired is not None and fired.astimezone(UTC) == at("2024-07-02T00:00:00")


def test_rate_and_at() -> None:
    assert Schedule("rate(5 minutes)").next_after(at("2024-01-01T00:00:00")) == at("2024-01-01T00:05:00")
    assert Schedule("at(2030-01-01T00:00:00)").next_after(at("2024-01-01T00:00:00")) == at(
        "2030-01-01T00:00:00"
    )
    assert Schedule("at(2020-01-01T00:00:00)").next_after(at("2024-01-01T00:00:00")) is None


@pytest.mark.parametrize(
    "expression", ["cron(0 2 * * *)", "cron(0 2 * * MON *)", "cron(0 2 1W * ? *)", "daily", "rate(0 hours)"]
)
def test_unreadable_expressions_are_refused(expression: str) -> None:
    with pytest.raises(ScheduleError):
        Schedule(expression).next_after(at("2024-01-01T00:00:00"))
