"""How the tables write times, ids and statuses: short in the cell, complete in the tooltip."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

STATUS_LABELS = {
    "pending": "Pending",
    "sending": "Sending",
    "sent": "Sent",
    "waiting": "Waiting",
    "qualified": "Qualified",
    "failed": "Failed",
    "skipped": "Skipped",
}


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


def short_date(day: date, today: date) -> str:
    if day == today:
        return "Today"
    if day == today - timedelta(days=1):
        return "Yesterday"
    return f"{day.day} {day:%b}" if day.year == today.year else f"{day.day} {day:%b %Y}"


def short_time(value: str | None, now: datetime | None = None, *, seconds: bool = False) -> str:
    """"14:03" today ("14:03:27" with `seconds`), "27 Nov 14:03" this year, "27 Nov 2024" before; dates
    alone as "Today", "27 Nov"; the raw text when unparsable."""
    now = now or datetime.now().astimezone()
    day = parse_date(value)
    if day is not None:
        return short_date(day, now.date())
    moment = parse_time(value)
    if moment is None:
        return value or ""
    if moment.date() == now.date():
        return moment.strftime("%H:%M:%S" if seconds else "%H:%M")
    if moment.year == now.year:
        return f"{moment.day} {moment:%b %H:%M}"
    return f"{moment.day} {moment:%b %Y}"


def long_time(value: str | None) -> str:
    day = parse_date(value)
    if day is not None:
        return day.isoformat()
    moment = parse_time(value)
    if moment is None:
        return value or ""
    return moment.strftime("%Y-%m-%d %H:%M:%S %Z").strip()


def short_id(value: int | str | None) -> str:
    """Lead ids are UUIDs: their first 8 characters tell them apart in a narrow column (the tooltip and
    Copy give the whole id)."""
    if value is None or value == "":
        return ""
    text = str(value)
    return text if len(text) <= 10 else text[:8]


def status_label(status: str) -> str:
    return STATUS_LABELS.get(status, status.capitalize())
