"""Moments, dates and numbers as the reader reads them: in their time zone and their language's
format (Babel's CLDR data). Stored moments are UTC; only what is shown is converted.

The time zone is the one chosen on the account page, else the browser's (static/timezone.js
keeps it in the `tz` cookie), else UTC.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

from babel.dates import (
    format_date,
    format_datetime,
    format_skeleton,
    format_time,
    get_datetime_format,
)
from babel.units import format_unit
from flask import has_app_context, has_request_context, request
from flask_babel import format_decimal, get_locale, get_timezone
from flask_babel import gettext as _
from flask_login import current_user

TIMEZONE_COOKIE = "tz"
# Set by reading_in() where there is no request to take the zone from (the worker).
_zone_in_force: ContextVar[str | None] = ContextVar("zone_in_force", default=None)


def valid_timezone(name: str | None) -> str | None:
    """The IANA name when the zone exists ("Asia/Ho_Chi_Minh"), None otherwise."""
    if not name or len(name) > 64:
        return None
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return None
    return name


def timezone_choices() -> list[str]:
    """UTC, then the named zones ("Asia/Seoul"), without the legacy and Etc/ aliases."""
    named = sorted(z for z in available_timezones() if "/" in z and not z.startswith("Etc/"))
    return ["UTC", *named]


def select_timezone() -> str | None:
    """Flask-Babel's timezone selector: the account's setting, else the browser's."""
    if not has_request_context():  # the worker writes files for readers anywhere: UTC
        return None
    if current_user.is_authenticated and valid_timezone(getattr(current_user, "time_zone", None)):
        return str(current_user.time_zone)
    return valid_timezone(request.cookies.get(TIMEZONE_COOKIE))


def time_zone_name() -> str:
    """The zone pages are shown in ("Asia/Seoul", "UTC"), to say so beside date inputs."""
    forced = _zone_in_force.get()
    if forced:
        return forced
    return str(get_timezone()) if has_app_context() else "UTC"


@contextmanager
def reading_in(zone: str | None) -> Iterator[None]:
    """Moments written inside are in this zone (None or unknown: as without it); for the
    worker, which writes a requester's PDF with no request of theirs at hand."""
    token = _zone_in_force.set(valid_timezone(zone))
    try:
        yield
    finally:
        _zone_in_force.reset(token)


def viewer_zone() -> ZoneInfo:
    """The reader's zone as a zoneinfo zone: Flask-Babel hands out pytz zones, whose
    replace(tzinfo=...) would read a typed-in time with the city's 19th-century offset."""
    return ZoneInfo(time_zone_name())


def _local(moment: datetime) -> datetime:
    if moment.tzinfo is None:  # SQLite hands back naive UTC
        moment = moment.replace(tzinfo=ZoneInfo("UTC"))
    return moment.astimezone(viewer_zone())


def when(moment: datetime | None, seconds: bool = False) -> str:
    """A moment in the reader's zone and language, with the zone said:
    "Mar 1, 2026, 11:59 PM UTC", "06:59 2 thg 3, 2026 +07", "2026. 3. 2. 오전 8:59 KST"."""
    if moment is None:
        return "—"
    local = _local(moment)
    locale = get_locale()
    clock = format_time(local, "medium" if seconds else "short", locale=locale)
    day_part = format_date(local, "medium", locale=locale)
    joined = str(get_datetime_format("medium", locale=locale)).replace("{1}", day_part)
    return f"{joined.replace('{0}', clock)} {local.strftime('%Z')}"


def moment_in_table(moment: datetime | None) -> str:
    """A moment in a table cell: the reader's zone and short format ("3/1/26, 11:59 PM"),
    the zone said once above the table rather than in every cell."""
    if moment is None:
        return ""
    return str(format_datetime(_local(moment), "short", locale=get_locale()))


def day(value: date | datetime | None) -> str:
    """A calendar day in the reader's language ("Mar 1, 2026", "1 thg 3, 2026"); a moment is
    first moved to the reader's zone."""
    if value is None:
        return "—"
    if isinstance(value, datetime):
        value = _local(value).date()
    return format_date(value, "medium", locale=get_locale())


def month(value: date) -> str:
    """A month as the reader's language writes it: "Apr 2027", "thg 4 2027", "2027년 4월"."""
    return str(format_skeleton("yMMM", value, locale=get_locale()))


def decimal(value: Any, digits: int = 2) -> str:
    """A score or a rate as the reader's language writes it: 9.5 / 9,5; at most `digits`
    decimals."""
    if value is None:
        return "—"
    return str(format_decimal(round(float(value), digits), format=f"#,##0.{'#' * digits}"))


def duration(seconds: float) -> str:
    """A span in days and hours, or minutes when under a day, in the reader's language:
    "25 days 15 hours", "25 ngày 15 tiếng", "5 minutes"."""
    total = max(0, int(seconds))
    days, rest = divmod(total, 86400)
    hours, rest = divmod(rest, 3600)
    locale = get_locale()
    parts = []
    if days:
        parts.append(format_unit(days, "duration-day", locale=locale))
    if hours:
        parts.append(format_unit(hours, "duration-hour", locale=locale))
    if not days and (rest or not parts):
        minutes = max(1, rest // 60) if total else 0
        parts.append(format_unit(minutes, "duration-minute", locale=locale))
    return " ".join(parts)


def late_by(seconds: float) -> str:
    """How late a submission is, said the same way to every role: "on time" or a duration."""
    return duration(seconds) if seconds > 0 else str(_("on time"))
