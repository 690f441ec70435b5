"""Fire times of a Kubernetes CronJob schedule (standard five-field cron, as kube-controller-manager
reads it with robfig/cron: lists, ranges, steps, month and weekday names, and the @ macros)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, tzinfo
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

_MACROS = {
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
    "@monthly": "0 0 1 * *",
    "@weekly": "0 0 * * 0",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@hourly": "0 * * * *",
}
_NAMES = {
    **{
        m: i + 1
        for i, m in enumerate(("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"))
    },
    **{d: i for i, d in enumerate(("sun", "mon", "tue", "wed", "thu", "fri", "sat"))},
}
_BOUNDS = ((0, 59), (0, 23), (1, 31), (1, 12), (0, 7))
MAX_FIRES = 20_000  # a "* * * * *" schedule over two weeks; more says nothing a burst could match


class ScheduleError(ValueError):
    """The schedule or its time zone cannot be read."""


def _value(text: str) -> int:
    text = text.lower()
    if text in _NAMES:
        return _NAMES[text]
    if not text.isdigit():
        raise ScheduleError(f"{text!r} is not a number")
    return int(text)


def _field(text: str, low: int, high: int) -> tuple[set[int], bool]:
    """The values a field allows, and whether it was a wildcard."""
    values: set[int] = set()
    for part in text.split(","):
        rng, _, step_text = part.partition("/")
        step = _value(step_text) if step_text else 1
        if step < 1:
            raise ScheduleError(f"step {step_text!r} must be at least 1")
        if rng in ("*", "?"):
            start, end = low, high
        elif "-" in rng:
            a, b = rng.split("-", 1)
            start, end = _value(a), _value(b)
        else:
            start = _value(rng)
            end = high if step_text else start
        if not low <= start <= end <= high:
            raise ScheduleError(f"{part!r} is outside {low}-{high}")
        values.update(range(start, end + 1, step))
    return values, text in ("*", "?")


def fire_times(schedule: str, time_zone: str | None, start: datetime, end: datetime) -> list[datetime]:
    """Every fire time in (start, end], in UTC. Raises ScheduleError for an unreadable schedule."""
    text = schedule.strip()
    if text.upper().startswith(("TZ=", "CRON_TZ=")):
        zone_text, _, text = text.partition(" ")
        time_zone = zone_text.split("=", 1)[1]
    text = _MACROS.get(text.lower(), text)
    fields = text.split()
    if len(fields) != 5:
        raise ScheduleError(f"{schedule!r} does not have five fields")
    (minutes, _), (hours, _), (days, any_day), (months, _), (weekdays, any_weekday) = (
        _field(f, lo, hi) for f, (lo, hi) in zip(fields, _BOUNDS, strict=True)
    )
    weekdays = {d % 7 for d in weekdays}
    try:
        zone: tzinfo = ZoneInfo(time_zone) if time_zone else UTC
    except (ZoneInfoNotFoundError, ValueError):
        raise ScheduleError(f"time zone {time_zone!r} is not a tz database name") from None
    return list(_walk(start, end, zone, minutes, hours, days, months, weekdays, any_day, any_weekday))


def _walk(
    start: datetime,
    end: datetime,
    zone: tzinfo,
    minutes: set[int],
    hours: set[int],
    days: set[int],
    months: set[int],
    weekdays: set[int],
    any_day: bool,
    any_weekday: bool,
) -> Iterator[datetime]:
    moment = start.astimezone(UTC).replace(second=0, microsecond=0) + timedelta(minutes=1)
    found = 0
    while moment <= end and found < MAX_FIRES:
        local = moment.astimezone(zone)
        weekday = (local.weekday() + 1) % 7  # cron: Sunday is 0
        # cron's rule: when both day fields are restricted, either may match.
        if any_day or any_weekday:
            day_ok = local.day in days and weekday in weekdays
        else:
            day_ok = local.day in days or weekday in weekdays
        if day_ok and local.month in months and local.hour in hours and local.minute in minutes:
            found += 1
            yield moment
        moment += timedelta(minutes=1)
