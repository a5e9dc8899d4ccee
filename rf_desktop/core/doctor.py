"""`rf-desktop doctor`: a read-only look at the owner's two accounts, in a report they can attach to a
support request.

The public material leaves several things open (Referral Factory's list order and envelope, whether it
honours `per_page`, which rate-limit headers Pipedrive sends), and rf-desktop is built to cope with each
answer. The doctor reports which answer this account gives, together with whose the tokens are, the
Referral Code field, the mapped fields, the pipelines and stages, the clock offset from the servers' `Date`
header, and the keychain in use. It only reads: no record is created, changed or qualified.

The report never holds a token (every line is also passed through the same redaction the API clients
use) or personal data: no names or emails of users, referrals or the token's owner, only counts, ids of
accounts, field and pipeline names, and what the APIs' envelopes and headers look like.
"""

from __future__ import annotations

import asyncio
import email.utils
import itertools
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

import httpx

from rf_desktop import __version__
from rf_desktop.core.config import Settings, check_campaigns, source_label, validate
from rf_desktop.core.connections import load_schema, pipedrive_api_base
from rf_desktop.core.http import ApiError, redact
from rf_desktop.core.pipedrive import PipedriveClient, refused_at_the_door
from rf_desktop.core.referral_factory import ReferralFactoryClient
from rf_desktop.core.schema import ITEM, PipedriveSchema, referral_code_field, split_target
from rf_desktop.core.secrets import ENV_VARS, PD_TOKEN, RF_TOKEN, SecretsError, TokenStore
from rf_desktop.core.token_costs import cost_of

Status = Literal["ok", "note", "problem"]

KEYCHAIN = "Keychain"
RF_AREA = "Referral Factory"
PD_AREA = "Pipedrive"
SETTINGS_AREA = "Settings"
# a page this small shows whether `per_page` is honoured without reading many users
PROBE_PAGE_SIZE = 5
RATE_HEADERS = (
    "x-ratelimit-limit",
    "x-ratelimit-remaining",
    "x-ratelimit-reset",
    "x-daily-requests-left",
    "x-daily-ratelimit-token-limit",
    "x-daily-ratelimit-token-remaining",
)
# updated_since windows and the daily budget's reset are read against the servers' clocks
CLOCK_TOLERANCE_SECONDS = 60
# a Date header has whole seconds, and an answer takes its time: closer than this is the same time
CLOCK_RESOLUTION_SECONDS = 2


@dataclass(frozen=True)
class Check:
    area: str
    name: str
    status: Status
    detail: str


@dataclass
class DoctorReport:
    created_at: datetime
    checks: list[Check] = field(default_factory=list)
    secrets: tuple[str, ...] = ()  # redacted from the text, never shown

    def add(self, area: str, name: str, status: Status, detail: str) -> None:
        self.checks.append(Check(area, name, status, detail))

    @property
    def problems(self) -> list[Check]:
        return [c for c in self.checks if c.status == "problem"]

    def text(self) -> str:
        lines = [
            f"rf-desktop {__version__} doctor report, {self.created_at:%Y-%m-%d %H:%M:%S} UTC",
            "Read-only; tokens and personal data (names, emails) are left out.",
        ]
        for area in dict.fromkeys(c.area for c in self.checks):
            lines += ["", area]
            lines += [f"  {c.status:8} {c.name}: {c.detail}" for c in self.checks if c.area == area]
        problems = len(self.problems)
        lines += ["", f"{problems} problem{'' if problems == 1 else 's'} found."]
        return redact("\n".join(lines), self.secrets) + "\n"


@dataclass(frozen=True)
class _Answer:
    """One HTTP answer as the doctor saw it: enough for envelopes, headers and the clock."""

    method: str
    path: str
    headers: httpx.Headers
    body: Any
    charged: bool  # Pipedrive counts it against the day's token budget
    received_at: datetime
    elapsed: float  # seconds between sending the request and reading the whole answer


class _Recorder:
    """An httpx response hook that keeps every answer of one client."""

    def __init__(self, now: Callable[[], datetime]) -> None:
        self.answers: list[_Answer] = []
        self._now = now

    async def __call__(self, response: httpx.Response) -> None:
        await response.aread()
        try:
            body = response.json()
        except ValueError:
            body = None
        received_at = self._now()
        elapsed = response.elapsed.total_seconds()  # known once the body is read
        request = response.request
        charged = not refused_at_the_door(response)
        self.answers.append(
            _Answer(request.method, request.url.path, response.headers, body, charged, received_at, elapsed)
        )

    def bodies(self, path_end: str) -> list[Any]:
        return [a.body for a in self.answers if a.path.endswith(path_end)]


def _utcnow() -> datetime:
    return datetime.now(UTC)


async def examine(
    settings: Settings | None,
    tokens: TokenStore,
    *,
    now: Callable[[], datetime] = _utcnow,
    hint: Callable[[ApiError], str] = lambda error: error.hint,
    session_tokens: Mapping[str, str] | None = None,
) -> DoctorReport:
    """Look at both accounts as `settings` describe them (the defaults when there are none yet). `hint`
    words what to do about a failed call (the command line names commands, the app its pages);
    `session_tokens` are tokens the app holds for this session only (the demo's), used before the keychain."""
    report = DoctorReport(now())
    # the keychain may block on an unlock prompt: read it off the event loop
    rf_token, pd_token = await asyncio.to_thread(_keychain_checks, tokens, session_tokens or {}, report)
    report.secrets = tuple(t for t in (rf_token, pd_token) if t)
    settings = settings or Settings()
    if settings == Settings():
        report.add(SETTINGS_AREA, "settings", "note", "none stored yet; the default addresses were used")
    schema = await _pipedrive(report, settings, pd_token, now, hint) if pd_token else None
    if rf_token:
        await _referral_factory(report, settings, rf_token, now, hint)
    if schema is not None:
        _mapped_fields(report, settings, schema)
        for issue in validate(settings, schema):
            if issue.severity == "error" and not issue.missing:
                report.add(SETTINGS_AREA, issue.path, "problem", issue.message)
    return report


def _keychain_checks(
    tokens: TokenStore, session: Mapping[str, str], report: DoctorReport
) -> tuple[str | None, str | None]:
    problem = tokens.keychain_error()
    # without a keychain, tokens from the environment still work: worth knowing, not a problem
    from_env = all(_in_environment(tokens, name) for name in (RF_TOKEN, PD_TOKEN))
    status: Status = "ok" if problem is None else "note" if from_env else "problem"
    report.add(KEYCHAIN, "backend", status, tokens.backend_description() if problem is None else str(problem))
    found: list[str | None] = []
    for name in (RF_TOKEN, PD_TOKEN):
        if session.get(name):
            report.add(KEYCHAIN, f"{name} token", "ok", "kept for this session only, not in the keychain")
            found.append(session[name])
            continue
        try:
            token, where = tokens.get(name), tokens.source(name)
        except SecretsError as error:
            report.add(KEYCHAIN, f"{name} token", "problem", str(error))
            found.append(None)
            continue
        if token:
            shown = f"the environment ({ENV_VARS[name]})" if where == "environment" else "the keychain"
            report.add(KEYCHAIN, f"{name} token", "ok", f"found in {shown}")
        else:
            report.add(KEYCHAIN, f"{name} token", "problem", "missing: nothing to check this account with")
        found.append(token)
    return found[0], found[1]


def _in_environment(tokens: TokenStore, name: str) -> bool:
    try:
        return tokens.source(name) == "environment"
    except SecretsError:  # not in the environment, and no keychain to look in
        return False


# --- Referral Factory ---


async def _referral_factory(
    report: DoctorReport,
    settings: Settings,
    token: str,
    now: Callable[[], datetime],
    hint: Callable[[ApiError], str],
) -> None:
    recorder = _Recorder(now)
    base = settings.referral_factory.base_url
    try:
        async with ReferralFactoryClient(base, token, event_hooks={"response": [recorder]}) as rf:
            campaigns = await rf.list_campaigns()
            first = await rf.users_page(1, PROBE_PAGE_SIZE)
            if first.has_next:
                await rf.users_page(2, PROBE_PAGE_SIZE)
    except ApiError as error:
        report.add(RF_AREA, "connection", "problem", f"{error.message} {hint(error)}".strip())
        _clock(report, RF_AREA, recorder)
        return
    listed = ", ".join(f"{c.get('id')} ({c.get('name') or 'unnamed'})" for c in campaigns) or "none"
    report.add(RF_AREA, "token", "ok", f"accepted by {_host(base)}; the account's campaigns: {listed}")
    for issue in check_campaigns(settings, campaigns):
        report.add(RF_AREA, "chosen campaigns", "problem", issue.message)
    for check in describe_users_list(recorder.bodies("/users"), PROBE_PAGE_SIZE):
        report.checks.append(check)
    _clock(report, RF_AREA, recorder)


def describe_users_list(pages: list[Any], asked: int) -> list[Check]:
    """What the first one or two pages of `GET /users` (asked with `per_page=asked`) say about the list:
    its paging fields, whether `per_page` was honoured, and its order."""
    if not pages or not isinstance(pages[0], dict) or not isinstance(pages[0].get("data"), list):
        return [Check(RF_AREA, "users list", "problem", "the answer has no `data` list")]
    first = pages[0]
    links = _mapping(first.get("links"))
    meta = _mapping(first.get("meta"))
    documented = {"links.next": "next" in links, "meta.current_page": "current_page" in meta}
    optional = {
        "meta.last_page": "last_page" in meta,
        "meta.total": "total" in meta,
        "meta.per_page": "per_page" in meta,
    }
    present = [name for name, here in {**documented, **optional}.items() if here]
    absent = [name for name, here in {**documented, **optional}.items() if not here]
    paging = f"data, {', '.join(present)}" + (f"; absent: {', '.join(absent)}" if absent else "")
    status: Status = "ok" if all(documented.values()) else "problem"
    checks = [Check(RF_AREA, "users list paging", status, paging)]
    users = [u for page in pages if isinstance(page, dict) for u in page.get("data") or [] if isinstance(u, dict)]
    got = len(first["data"])
    has_next = bool(links.get("next")) or len(pages) > 1
    if got == asked:
        size: tuple[Status, str] = ("ok", f"asked for {asked} a page, got {asked} (honoured)")
    elif got > asked:
        size = ("note", f"asked for {asked} a page, got {got}: per_page is ignored")
    elif has_next:
        size = ("note", f"asked for {asked} a page, got {got} with more pages to come")
    else:
        size = ("note", f"cannot tell: the account has only {got} users")
    checks.append(Check(RF_AREA, "users page size", *size))
    checks.append(Check(RF_AREA, "users order", "ok", _order([u.get("id") for u in users])))
    return checks


def _order(ids: list[Any]) -> str:
    numbers = [i for i in ids if isinstance(i, int)]
    if len(numbers) < 2:
        return "cannot tell: fewer than two users"
    pairs = list(itertools.pairwise(numbers))
    if all(a < b for a, b in pairs):
        return "oldest first (rising ids)"
    if all(a > b for a, b in pairs):
        return "newest first (falling ids)"
    return "no order by id"


# --- Pipedrive ---


async def _pipedrive(
    report: DoctorReport,
    settings: Settings,
    token: str,
    now: Callable[[], datetime],
    hint: Callable[[ApiError], str],
) -> PipedriveSchema | None:
    recorder = _Recorder(now)
    base = pipedrive_api_base(settings.pipedrive.base_url, settings.pipedrive.company_domain)
    try:
        async with PipedriveClient(base, token, event_hooks={"response": [recorder]}) as pd:
            me = await pd.me()
            schema = await load_schema(pd)
    except ApiError as error:
        report.add(PD_AREA, "connection", "problem", f"{error.message} {hint(error)}".strip())
        _clock(report, PD_AREA, recorder)
        return None
    company = f"{me.get('company_name') or 'a company'} ({me.get('company_domain') or 'no domain'})"
    access = [a for a in me.get("access") or [] if isinstance(a, dict)]
    role = "an admin" if me.get("is_admin") or any(a.get("admin") for a in access) else "a user"
    zone = f", time zone {me['timezone_name']}" if me.get("timezone_name") else ""
    report.add(
        PD_AREA, "token", "ok", f"accepted by {_host(base)}: {role} (user id {me.get('id')}) of {company}{zone}"
    )
    _referral_code_field(report, settings, schema)
    pipelines = "; ".join(
        f"{p.id} {p.name} ({len(schema.stages_of(p.id))} stages)" for p in schema.pipelines
    )
    report.add(PD_AREA, "pipelines", "ok" if schema.pipelines else "problem", pipelines or "none")
    _rate_headers(report, recorder)
    # the API path follows the base URL's own path (a proxy's, or the sandbox's /pd)
    spent = sum(cost_of(a.method, a.path[a.path.find("/api/") :]) for a in recorder.answers if a.charged)
    report.add(PD_AREA, "cost of this check", "ok", f"{spent} Pipedrive API tokens of today's budget")
    _clock(report, PD_AREA, recorder)
    return schema


def _referral_code_field(report: DoctorReport, settings: Settings, schema: PipedriveSchema) -> None:
    target = settings.referral_code_target()
    if target is None:
        found = referral_code_field(schema)
        target = f"{ITEM}:{found.code}" if found else None
    if target is None:
        report.add(PD_AREA, "Referral Code field", "problem", "not found on deals or leads; the app can create it")
        return
    for mode in ("lead", "deal"):
        field_def = schema.field(target, mode)
        if field_def is None:
            report.add(PD_AREA, f"Referral Code field on {mode}s", "problem", f"missing ({target})")
        else:
            report.add(PD_AREA, f"Referral Code field on {mode}s", "ok", f"'{field_def.name}' ({field_def.field_type})")


def _mapped_fields(report: DoctorReport, settings: Settings, schema: PipedriveSchema) -> None:
    for mapping in settings.mappings:
        parsed = split_target(mapping.target)
        field_def = schema.field(mapping.target, settings.mode) if parsed else None
        where = "person" if parsed and parsed[0] == "person" else settings.mode
        name = f"{source_label(mapping.source)} → {where}"
        if field_def is None:
            report.add(SETTINGS_AREA, name, "problem", f"the field {mapping.label or mapping.target} does not exist")
        else:
            report.add(SETTINGS_AREA, name, "ok", f"'{field_def.name}' ({field_def.field_type})")


def _rate_headers(report: DoctorReport, recorder: _Recorder) -> None:
    total = len(recorder.answers)
    for header in RATE_HEADERS:
        values = [a.headers[header] for a in recorder.answers if header in a.headers]
        if values:
            report.add(PD_AREA, header, "ok", f"on {len(values)} of {total} answers (last: {values[-1]})")
        else:
            report.add(PD_AREA, header, "note", f"absent from all {total} answers")


def _clock(report: DoctorReport, area: str, recorder: _Recorder) -> None:
    """The server's clock against this computer's, from the quickest answer's `Date` header: the server
    wrote it somewhere between sending and receiving, and in whole seconds (so add half of each)."""
    estimates = []
    for answer in recorder.answers:
        try:
            server = email.utils.parsedate_to_datetime(answer.headers.get("date", ""))
        except (TypeError, ValueError):
            continue
        middle = answer.received_at - timedelta(seconds=answer.elapsed / 2)
        estimates.append((answer.elapsed, (server - middle).total_seconds() + 0.5))
    if not estimates:
        report.add(area, "clock", "note", "the answers carry no Date header")
        return
    offset = min(estimates)[1]
    status: Status = "ok" if abs(offset) < CLOCK_TOLERANCE_SECONDS else "problem"
    direction = "ahead of" if offset > 0 else "behind"
    detail = f"the server's clock is {abs(offset):.0f} s {direction} this computer's"
    if abs(offset) < CLOCK_RESOLUTION_SECONDS:
        detail = "the server's clock agrees with this computer's"
    report.add(area, "clock", status, detail)


def _mapping(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _host(base_url: str) -> str:
    return httpx.URL(base_url).host
