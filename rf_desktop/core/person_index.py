"""Which Pipedrive person has which email address, kept locally.

Finding a person by email with Pipedrive's search costs 20 tokens a call and is limited to 10 calls per
2 seconds on every plan, which would make a backfill of 2,000 referrals spend 40,000 tokens (more than a
Lite account's whole day) and crawl at 5 referrals a second. Listing persons costs 10 tokens per 500, and
`updated_since` keeps the list current for 10 tokens a poll, so the engine reads the list once and then
only what changed.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from rf_desktop.core.pipedrive import PipedriveClient

# writes in the same second can straddle a page; re-reading a minute back costs nothing extra
OVERLAP = timedelta(seconds=60)


def _emails(person: dict[str, Any]) -> list[str]:
    return [str(e["value"]).strip().casefold() for e in person.get("emails") or [] if e.get("value")]


def _parse(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value.replace("Z", "+00:00")) if value else None


class PersonIndex:
    def __init__(self) -> None:
        self._by_email: dict[str, int] = {}
        self._since: datetime | None = None
        self._created: set[int] = set()

    def __len__(self) -> int:
        return len(self._by_email)

    def find(self, email: str) -> int | None:
        return self._by_email.get(email.strip().casefold())

    def remember(self, email: str, person_id: int, *, created_here: bool = False) -> None:
        self._by_email.setdefault(email.strip().casefold(), person_id)
        if created_here:
            self._created.add(person_id)

    def created_here(self, person_id: int) -> bool:
        """True for a person this sync created: no other install can have given it a lead or deal yet.
        Kept in memory only, so after a restart every person counts as one that may have some."""
        return person_id in self._created

    def forget(self, person_id: int) -> None:
        """The person is gone from Pipedrive (deleted or merged)."""
        for email in [e for e, pid in self._by_email.items() if pid == person_id]:
            del self._by_email[email]

    def _add(self, person: dict[str, Any]) -> None:
        if not isinstance(person.get("id"), int):
            return  # a malformed entry names nobody
        person_id = int(person["id"])
        for email in _emails(person):
            known = self._by_email.get(email)
            # several persons may share an address; the oldest is the one the sales team works with
            if known is None or person_id < known:
                self._by_email[email] = person_id

    async def refresh(self, pd: PipedriveClient) -> int:
        """Read every person the first time, then only those changed since the last refresh."""
        since = self._since - OVERLAP if self._since else None
        newest = self._since
        cursor: str | None = None
        seen = 0
        while True:
            page = await pd.persons_page(updated_since=since, cursor=cursor)
            for person in page.items:
                seen += 1
                self._add(person)
                updated = _parse(person.get("update_time"))
                if updated and (newest is None or updated > newest):
                    newest = updated
            cursor = page.next_cursor
            if not cursor:
                break
        self._since = newest or self._since
        return seen
