"""How the tables write times and ids: short in the cell, complete in the tooltip, dates and times in the
owner's own locale (`QLocale()`, the system's unless the app sets another)."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta

from PySide6.QtCore import QDate, QLocale, QTime


def parse_time(value: str | None) -> datetime | None:
    """An ISO 8601 (or Referral Factory's "YYYY-MM-DD HH:MM:SS", UTC) timestamp in local time."""
    if not value:
        return None
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone()


def parse_date(value: str | None) -> date | None:
    """A date-only value ("2024-12-27", as Referral Factory gives `signed_up_at`); None otherwise."""
    if not value or len(value) != 10:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        return None


def owners_locale() -> QLocale:
    """The locale the app runs in; where none is set (the "C" locale of a bare system), English as
    written in most of the world, with day-month-year dates and a 24-hour clock."""
    locale = QLocale()
    if locale.language() == QLocale.Language.C:
        return QLocale(QLocale.Language.English, QLocale.Country.UnitedKingdom)
    return locale


def locale_time(moment: time, *, seconds: bool = False) -> str:
    """"14:03" or "2:03 PM", as the owner's locale writes a time ("14:03:27" with `seconds`)."""
    locale = owners_locale()
    layout = locale.timeFormat(QLocale.FormatType.ShortFormat)
    if seconds and "s" not in layout:
        layout = layout.replace("mm", "mm:ss", 1)
    return locale.toString(QTime(moment.hour, moment.minute, moment.second), layout)


def locale_date(day: date) -> str:
    return owners_locale().toString(QDate(day.year, day.month, day.day), QLocale.FormatType.ShortFormat)


def short_date(day: date, today: date) -> str:
    if day == today:
        return "Today"
    if day == today - timedelta(days=1):
        return "Yesterday"
    return locale_date(day)


def short_time(value: str | None, now: datetime | None = None, *, seconds: bool = False) -> str:
    """The time alone today ("14:03", "14:03:27" with `seconds`), "Yesterday 14:03", then the locale's
    short date and time; dates alone as "Today", "Yesterday" or the short date; the raw text when
    unparsable."""
    now = now or datetime.now().astimezone()
    day = parse_date(value)
    if day is not None:
        return short_date(day, now.date())
    moment = parse_time(value)
    if moment is None:
        return value or ""
    clock = locale_time(moment.time(), seconds=seconds)
    if moment.date() == now.date():
        return clock
    return f"{short_date(moment.date(), now.date())} {clock}"


def long_time(value: str | None) -> str:
    """The whole date and time, in the locale's long date ("Sunday, 15 June 2025 14:03:27 CEST")."""
    day = parse_date(value)
    if day is not None:
        return owners_locale().toString(QDate(day.year, day.month, day.day), QLocale.FormatType.LongFormat)
    moment = parse_time(value)
    if moment is None:
        return value or ""
    when = owners_locale().toString(QDate(moment.year, moment.month, moment.day), QLocale.FormatType.LongFormat)
    return f"{when} {locale_time(moment.time(), seconds=True)} {moment:%Z}".strip()


def exact_time(value: str | None) -> str:
    """"2025-06-15 14:03:27 CEST": what a spreadsheet reads back, for Copy."""
    day = parse_date(value)
    if day is not None:
        return day.isoformat()
    moment = parse_time(value)
    if moment is None:
        return value or ""
    return moment.strftime("%Y-%m-%d %H:%M:%S %Z").strip()


def first_seen_the_same_day(signed_up_at: str | None, recorded_at: str | None) -> datetime | None:
    """Referral Factory gives the sign-up's date only; rf-desktop records a referral within a minute or so
    of its sign-up, so the moment it was recorded stands for the sign-up's time (when it is the same day,
    that is, not a referral read later from the campaign's history)."""
    day = parse_date(signed_up_at)
    seen = parse_time(recorded_at)
    if day is None or seen is None or seen.date() != day:
        return None
    return seen


def signed_up_text(signed_up_at: str | None, recorded_at: str | None, now: datetime | None = None) -> str:
    """"Today 14:03" (the time rf-desktop saw the sign-up), or the date alone for older sign-ups."""
    seen = first_seen_the_same_day(signed_up_at, recorded_at)
    if seen is None:
        return short_time(signed_up_at, now)
    now = now or datetime.now().astimezone()
    return f"{short_date(seen.date(), now.date())} {locale_time(seen.time())}"


def signed_up_tooltip(signed_up_at: str | None, recorded_at: str | None) -> str:
    seen = first_seen_the_same_day(signed_up_at, recorded_at)
    signed = long_time(signed_up_at)
    if seen is None:
        return f"Signed up {signed}" if signed else ""
    return f"Signed up {signed}; rf-desktop saw the sign-up at {locale_time(seen.time(), seconds=True)}"


def short_id(value: int | str | None) -> str:
    """Lead ids are UUIDs: their first 8 characters tell them apart in a narrow column (the tooltip and
    Copy give the whole id)."""
    if value is None or value == "":
        return ""
    text = str(value)
    return text if len(text) <= 10 else text[:8]
