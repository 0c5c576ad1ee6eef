"""EventBridge Scheduler expressions, evaluated locally: `cron(…)`, `rate(…)` and `at(…)`.

moto stores a schedule but never fires it; the local runtime asks `Schedule.next_after` when to fire next.
Cron fields are AWS's six: minutes hours day-of-month month day-of-week year, with `*`, `?`, ranges,
lists, steps, names (JAN, MON) and `L` in day-of-month. `W` and `#` are not supported (a clear error).
"""

from __future__ import annotations

import calendar
import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

_MONTHS = {name: i for i, name in enumerate(calendar.month_abbr) if name}
_DAYS = {"SUN": 1, "MON": 2, "TUE": 3, "WED": 4, "THU": 5, "FRI": 6, "SAT": 7}
_UNITS = {"minute": 60, "minutes": 60, "hour": 3600, "hours": 3600, "day": 86400, "days": 86400}


class ScheduleError(ValueError):
    """A schedule expression this evaluator cannot read."""


def _values(field: str, low: int, high: int, names: dict[str, int] | None = None) -> frozenset[int]:
    if field in ("*", "?"):
        return frozenset(range(low, high + 1))
    result: set[int] = set()
    for part in field.split(","):
        step, stepped = 1, "/" in part
        if stepped:
            part, step_text = part.split("/", 1)
            step = int(step_text)
            if step < 1:
                raise ScheduleError(f"step {step} in {field!r} must be at least 1")

        def number(text: str) -> int:
            upper = text.upper()
            if names and upper[:3] in names:
                return names[upper[:3]]
            if not text.isdigit():
                raise ScheduleError(f"{text!r} in {field!r} is not supported")
            return int(text)

        if part in ("*", "?"):
            start, end = low, high
        elif "-" in part:
            first, last = part.split("-", 1)
            start, end = number(first), number(last)
        else:
            start = number(part)
            end = high if stepped else start  # "5/15": from 5 on, every 15; "5/1": from 5 on, every one
        if not (low <= start <= high and low <= end <= high):
            raise ScheduleError(f"{part!r} in {field!r} is outside {low}-{high}")
        result.update(range(start, end + 1, step))
    return frozenset(result)


@dataclass(frozen=True)
class Cron:
    minutes: frozenset[int]
    hours: frozenset[int]
    days: frozenset[int] | None  # None: not restricted
    last_day: bool
    months: frozenset[int]
    weekdays: frozenset[int] | None  # AWS numbering, 1 = Sunday
    years: frozenset[int]

    @classmethod
    def parse(cls, body: str) -> Cron:
        fields = body.split()
        if len(fields) != 6:
            raise ScheduleError(f"cron({body}) needs six fields: minutes hours day month weekday year")
        minute, hour, dom, month, dow, year = fields
        if any(mark in field for field in (dom, dow) for mark in ("W", "#")) or dow.upper().endswith("L"):
            raise ScheduleError(f"cron({body}): W, # and L in day-of-week are not supported locally")
        if (dom == "?") == (dow == "?"):
            raise ScheduleError(f"cron({body}): exactly one of day-of-month and day-of-week must be '?'")
        last_day = dom.upper() == "L"
        return cls(
            minutes=_values(minute, 0, 59),
            hours=_values(hour, 0, 23),
            days=None if dom in ("?", "*") or last_day else _values(dom, 1, 31),
            last_day=last_day,
            months=_values(month, 1, 12, _MONTHS),
            weekdays=None if dow in ("?", "*") else _values(dow, 1, 7, _DAYS),
            years=_values(year, 1970, 2199),
        )

    def _day_matches(self, day: datetime) -> bool:
        if day.year not in self.years or day.month not in self.months:
            return False
        if self.last_day and day.day != calendar.monthrange(day.year, day.month)[1]:
            return False
        if self.days is not None and day.day not in self.days:
            return False
        return self.weekdays is None or (day.isoweekday() % 7) + 1 in self.weekdays

    def next_after(self, moment: datetime) -> datetime | None:
        start = moment.replace(second=0, microsecond=0) + timedelta(minutes=1)
        day = start.replace(hour=0, minute=0)
        for _ in range(366 * 5):
            if self._day_matches(day):
                for hour in sorted(self.hours):
                    for minute in sorted(self.minutes):
                        candidate = day.replace(hour=hour, minute=minute)
                        if candidate >= start:
                            return candidate
            day = (day + timedelta(days=1, hours=2)).replace(hour=0, minute=0)  # safe across DST changes
        return None


@dataclass(frozen=True)
class Schedule:
    expression: str
    timezone: str = "UTC"

    def next_after(self, moment: datetime) -> datetime | None:
        """The first firing strictly after `moment` (an aware datetime), or None if there is none."""
        zone = ZoneInfo(self.timezone or "UTC")
        local = moment.astimezone(zone)
        match = re.fullmatch(r"\s*(cron|rate|at)\((.*)\)\s*", self.expression)
        if not match:
            raise ScheduleError(f"{self.expression!r} is not cron(…), rate(…) or at(…)")
        kind, body = match.groups()
        if kind == "cron":
            found = Cron.parse(body).next_after(local.replace(tzinfo=None))
            return found.replace(tzinfo=zone) if found else None
        if kind == "rate":
            rate = re.fullmatch(r"\s*(\d+)\s+(minutes?|hours?|days?)\s*", body)
            if not rate or int(rate.group(1)) < 1:
                raise ScheduleError(f"rate({body}) must be 'N minutes|hours|days' with N >= 1")
            return moment + timedelta(seconds=int(rate.group(1)) * _UNITS[rate.group(2)])
        when = datetime.fromisoformat(body.strip()).replace(tzinfo=zone)
        return when if when > moment else None
