"""Simulated Referral Factory API v2, as its public documentation describes it (mounted at /rf/api/v2).

Bearer token, Laravel-style `data`/`links`/`meta` pagination, 422 validation bodies, 600 calls per minute
per token. Where the real behaviour is unverified, the choice made here is listed in docs/sandbox.md.
"""

from __future__ import annotations

import copy
import dataclasses
import math
import operator
import random
import re
import secrets
import string
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from rf_desktop.sandbox.clock import Clock
from rf_desktop.sandbox.limits import PerMinuteLimiter

if TYPE_CHECKING:
    from rf_desktop.sandbox.state import SandboxState

DEFAULT_TOKEN = "rf-sandbox-token"  # noqa: S105 (the sandbox's published fake token)
SEED_REFERRER_CODE = "ALICE001"
PARTNER_REFERRER_CODE = "BRUNO002"
# a reserved top-level domain: links shown in the demo can never reach a real Referral Factory page
SITE = "https://sandbox.referral-factory.example"
FIRST_USER_ID = 1001
PER_PAGE_DEFAULT = 25
PER_PAGE_MAX = 250
RATE_LIMIT_PER_MINUTE = 600
# "If you abuse the limit more than 3 times, your IP is blocked" (one copy of the docs says for 7 days)
ABUSES_BEFORE_BLOCK = 3
BLOCK_SECONDS = 7 * 24 * 3600.0
USER_TYPES = ("person_referring", "person_invited")
SOCIALS = ("email", "whatsapp", "facebook", "linkedin", "twitter", "sms")
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_CODE_ALPHABET = string.ascii_letters + string.digits


LIST_ORDERS = ("oldest_first", "newest_first")
ENVELOPES = ("laravel", "minimal")
PER_PAGE_MODES = ("honoured", "ignored")
REQUALIFY_ANSWERS = ("unchanged", "refused")


@dataclasses.dataclass
class RfShape:
    """The answers the public material leaves open, one mode each (docs/sandbox.md, "Referral Factory shapes").

    - `order`: users oldest first (by id) or newest first;
    - `envelope`: Laravel's full paginator, or only the documented `data`, `links.next`, `meta.current_page`;
    - `per_page`: honoured (up to 250), or ignored (always 25);
    - `requalify`: qualifying an already qualified user answers 200 unchanged, or 422.
    """

    order: str = "oldest_first"
    envelope: str = "laravel"
    per_page: str = "honoured"
    requalify: str = "unchanged"

    @classmethod
    def from_json(cls, body: dict[str, Any]) -> RfShape:
        allowed = {
            "order": LIST_ORDERS,
            "envelope": ENVELOPES,
            "per_page": PER_PAGE_MODES,
            "requalify": REQUALIFY_ANSWERS,
        }
        unknown = set(body) - set(allowed)
        if unknown:
            raise ValueError(f"unknown shape settings: {', '.join(sorted(unknown))}")
        for name, value in body.items():
            if value not in allowed[name]:
                raise ValueError(f"{name} must be one of {', '.join(allowed[name])}")
        return cls(**body)

    def to_json(self) -> dict[str, str]:
        return dataclasses.asdict(self)


class RfValidationError(Exception):
    """A 422 in Referral Factory's documented shape: field -> messages."""

    def __init__(self, errors: dict[str, list[str]]) -> None:
        super().__init__("; ".join(m for ms in errors.values() for m in ms))
        self.errors = errors

    def body(self) -> dict[str, Any]:
        return {
            "code": 422,
            "message": "Validation errors in your request",
            "errors": {f: [{"field": f, "message": m} for m in ms] for f, ms in self.errors.items()},
        }


class RfNotFoundError(Exception):
    pass


def _invalid(field: str, message: str) -> RfValidationError:
    return RfValidationError({field: [message]})


def _field(
    fid: int, label: str, *, required: bool = False, options: list[str] | None = None
) -> dict[str, Any]:
    return {
        "id": fid,
        "type": "select" if options else "input",
        "label": label,
        "value": options,
        "required": required,
    }


def _campaign(
    cid: int,
    name: str,
    code: str,
    status: str,
    referring: list[dict[str, Any]],
    invited: list[dict[str, Any]],
) -> dict[str, Any]:
    return {
        "id": cid,
        "name": name,
        "code": code,
        "lang": "en",
        "url": f"{SITE}/c/{code}",
        "reach": 0,
        "status": status,
        "starts_at": None,
        "ends_at": None,
        "created_at": "2025-03-01T09:00:00.000000Z",
        "fields": {"person_referring": referring, "person_invited": invited},
        "assets": {"logo": {"type": "square", "path": f"{SITE}/assets/{code}/logo.png"}},
    }


def _seed_campaigns() -> list[dict[str, Any]]:
    return [
        _campaign(
            1,
            "Spring Referral Campaign",
            "spring-referral",
            "launched",
            [_field(11, "Last Name")],
            [
                _field(12, "Last Name", required=True),
                _field(13, "Company"),
                _field(14, "Phone"),
                _field(15, "Plan", options=["Starter", "Growth", "Enterprise"]),
            ],
        ),
        _campaign(
            2,
            "Partner Program",
            "partner-program",
            "launched",
            [_field(21, "Company")],
            [_field(22, "Last Name"), _field(23, "Company")],
        ),
        _campaign(3, "Summer Draft", "summer-draft", "draft", [], [_field(31, "Last Name")]),
    ]


class ReferralFactoryState:
    """Campaigns and users of one simulated Referral Factory account. Not thread-safe by itself: callers
    hold `SandboxState.lock`."""

    def __init__(self, clock: Clock) -> None:
        self.clock = clock
        self.reset()

    # --- lifecycle -------------------------------------------------------------------------------------

    def reset(self) -> None:
        """No campaigns, no users, the default token, a fresh rate limit."""
        self.token = DEFAULT_TOKEN
        self.campaigns: dict[int, dict[str, Any]] = {}
        self.users: dict[int, dict[str, Any]] = {}
        # one entry per change of a user's qualification: {"user_id", "qualified", "at"}
        self.qualification_log: list[dict[str, Any]] = []
        self.limiter = PerMinuteLimiter(self.clock, limit=RATE_LIMIT_PER_MINUTE)
        self.shape = RfShape()
        self.abuses = 0  # times a client went over the rate limit (a new time once a window has passed)
        self._last_refusal: float | None = None
        self._blocked_until: float | None = None
        # every PUT /users/qualification that named a user, whatever the answer: what a client asked for
        self.qualification_calls = 0
        self._next_user_id = FIRST_USER_ID
        # seeded, so referral codes come out the same in every run
        self._rng = random.Random(0)

    def seed(self) -> None:
        """Three campaigns (two launched, one draft) and one Person Referring in each launched one."""
        for campaign in _seed_campaigns():
            self.campaigns[campaign["id"]] = campaign
        self.create_user(
            1,
            "Alice",
            "alice@example.com",
            source="Direct",
            code=SEED_REFERRER_CODE,
            meta=[{"field": "Last Name", "value": "Anderson"}],
        )
        self.create_user(
            2,
            "Bruno",
            "bruno@example.com",
            source="Direct",
            code=PARTNER_REFERRER_CODE,
            meta=[{"field": "Company", "value": "Bruno & Partners"}],
        )

    def number_users_after(self, last_id: int) -> None:
        """Users created from now on are numbered after `last_id`, as in an account whose history already
        reached it (Referral Factory numbers users in the order they sign up)."""
        self._next_user_id = max(self._next_user_id, last_id + 1)

    def to_json(self) -> dict[str, Any]:
        """A copy, so it can be serialised after the lock is released."""
        return copy.deepcopy(
            {
                "token": self.token,
                "campaigns": list(self.campaigns.values()),
                "users": list(self.users.values()),
                "qualification_log": self.qualification_log,
                "next_user_id": self._next_user_id,
            }
        )

    def from_json(self, data: dict[str, Any]) -> None:
        self.reset()
        data = copy.deepcopy(data)
        self.token = data["token"]
        self.campaigns = {c["id"]: c for c in data["campaigns"]}
        self.users = {u["id"]: u for u in data["users"]}
        self.qualification_log = list(data["qualification_log"])
        self._next_user_id = data["next_user_id"]

    def admit(self) -> str | None:
        """None when an API call with the right token may go ahead, else "limited" (429) or "blocked" (the
        address is blocked after abusing the limit more than three times)."""
        now = self.clock.monotonic()
        if self._blocked_until is not None and now < self._blocked_until:
            return "blocked"
        if self.limiter.check(self.token)[0]:
            return None
        if self._last_refusal is None or now - self._last_refusal >= self.limiter.window:
            self.abuses += 1
        self._last_refusal = now
        if self.abuses > ABUSES_BEFORE_BLOCK:
            self._blocked_until = now + BLOCK_SECONDS
            return "blocked"
        return "limited"

    # --- lookups ---------------------------------------------------------------------------------------

    def campaign(self, identifier: int | str) -> dict[str, Any]:
        """A campaign by id or code."""
        for campaign in self.campaigns.values():
            if str(campaign["id"]) == str(identifier) or campaign["code"] == identifier:
                return campaign
        raise RfNotFoundError(f"campaign {identifier} not found")

    def user(self, identifier: int | str) -> dict[str, Any]:
        """A user by id or referral code."""
        if isinstance(identifier, int) or str(identifier).isdigit():
            found = self.users.get(int(identifier))
            if found is not None:
                return found
        for user in self.users.values():
            if user["code"] == identifier:
                return user
        raise RfNotFoundError(f"user {identifier} not found")

    def user_by_email(self, campaign_id: int, email: str) -> dict[str, Any]:
        for user in self.users.values():
            if user["campaign_id"] == campaign_id and user["email"].lower() == email.lower():
                return user
        raise RfNotFoundError(f"no user with that email in campaign {campaign_id}")

    def referrers(self, campaign_id: int) -> list[dict[str, Any]]:
        return [
            u
            for u in self.users.values()
            if u["campaign_id"] == campaign_id and u["type"] == "person_referring"
        ]

    def qualification_count(self, user_id: int) -> int:
        """How many times the user went from pending to qualified (1 at most, unless reverted in between)."""
        return sum(1 for e in self.qualification_log if e["user_id"] == user_id and e["qualified"])

    # --- changes ---------------------------------------------------------------------------------------

    def create_user(
        self,
        campaign_id: int,
        first_name: str,
        email: str,
        *,
        referrer: dict[str, Any] | None = None,
        source: str = "Api",
        meta: list[dict[str, Any]] | None = None,
        code: str | None = None,
        ip: str = "203.0.113.10",
    ) -> dict[str, Any]:
        """Validate and store a user: a Person Invited when `referrer` is given, else a Person Referring."""
        self._check_campaign(campaign_id)
        _check_first_name(first_name)
        self._check_email(campaign_id, email, exclude_id=None)
        if referrer is not None and referrer["campaign_id"] != campaign_id:
            raise _invalid("referrer", "The selected referrer is invalid.")
        code = code or self._new_code()
        user: dict[str, Any] = {
            "id": self._next_user_id,
            "campaign_id": campaign_id,
            "referrer_id": referrer["id"] if referrer else None,
            "first_name": first_name,
            "email": email,
            "code": code,
            "url": f"{SITE}/{code}",
            "reach": 0,
            "source": source,
            "type": "person_invited" if referrer else "person_referring",
            "ip": ip,
            "signed_up_at": self.clock.now().date().isoformat(),
            "qualified_at": None,
            "unsubscribed_at": None,
            "meta": _normalise_meta(meta),
            "sharing": {
                "socials": [{"social": s, "url": f"{SITE}/{code}/socials/{s}"} for s in SOCIALS],
                "subject": None,
                "text": None,
            },
            "qr": {"src": f"{SITE}/{code}/qr.svg", "download": f"{SITE}/{code}/qr.png"},
        }
        self._next_user_id += 1
        self.users[user["id"]] = user
        if referrer:
            referrer["reach"] += 1
        return user

    def sign_up(
        self,
        campaign_id: int,
        first_name: str,
        email: str,
        referrer_code: str | None = None,
        meta: list[dict[str, Any]] | None = None,
    ) -> dict[str, Any]:
        """A Person Invited arriving through a referrer's link (by default the campaign's first referrer)."""
        self._check_campaign(campaign_id)
        if referrer_code is None:
            referrers = self.referrers(campaign_id)
            if not referrers:
                raise _invalid("referrer", "This campaign has no Person Referring to credit.")
            referrer = referrers[0]
        else:
            try:
                referrer = self.user(referrer_code)
            except RfNotFoundError:
                raise _invalid("referrer", "The selected referrer is invalid.") from None
        ip = f"198.51.100.{self._rng.randint(1, 254)}"
        return self.create_user(
            campaign_id, first_name, email, referrer=referrer, source="Referred", meta=meta, ip=ip
        )

    def update_user(
        self, user: dict[str, Any], *, first_name: Any = None, email: Any = None, meta: Any = None
    ) -> dict[str, Any]:
        """Change the given fields; `meta` entries replace the values of the same labels."""
        if first_name is not None:
            _check_first_name(first_name)
        if email is not None:
            self._check_email(user["campaign_id"], email, exclude_id=user["id"])
        new_meta = _normalise_meta(meta)
        if first_name is not None:
            user["first_name"] = first_name
        if email is not None:
            user["email"] = email
        for entry in new_meta:
            existing = next((m for m in user["meta"] if m["field"] == entry["field"]), None)
            if existing is None:
                user["meta"].append(entry)
            else:
                existing["value"] = entry["value"]
        return user

    def delete_user(self, user: dict[str, Any]) -> None:
        del self.users[user["id"]]

    def set_qualified(self, user: dict[str, Any], qualified: bool) -> bool:
        """Qualify (or revert to pending) a Person Invited. Returns whether anything changed: qualifying an
        already qualified user changes nothing and is not logged, so a referral never qualifies twice; in
        the `requalify: refused` shape it is a 422 instead."""
        if user["type"] != "person_invited":
            raise _invalid("user", "You can only qualify referred users (Person Invited).")
        if qualified == (user["qualified_at"] is not None):
            if qualified and self.shape.requalify == "refused":
                raise _invalid("user", "This user is already qualified.")
            return False
        user["qualified_at"] = self.clock.now().date().isoformat() if qualified else None
        self.qualification_log.append({"user_id": user["id"], "qualified": qualified, "at": self.clock.iso()})
        return True

    def _check_campaign(self, campaign_id: int) -> None:
        if campaign_id not in self.campaigns:
            raise _invalid("campaign_id", "The selected campaign id is invalid.")

    def _check_email(self, campaign_id: int, email: Any, *, exclude_id: int | None) -> None:
        if not isinstance(email, str) or not email.strip():
            raise _invalid("email", "The email field is required.")
        if not _EMAIL.match(email):
            raise _invalid("email", "The email must be a valid email address.")
        try:
            other = self.user_by_email(campaign_id, email)
        except RfNotFoundError:
            return
        if other["id"] != exclude_id:
            raise _invalid("email", "The email has already been taken.")

    def _new_code(self) -> str:
        taken = {u["code"] for u in self.users.values()}
        while True:
            code = "".join(self._rng.choice(_CODE_ALPHABET) for _ in range(8))
            if code not in taken:
                return code


def _check_first_name(first_name: Any) -> None:
    if not isinstance(first_name, str) or not first_name.strip():
        raise _invalid("first_name", "The first name field is required.")
    if len(first_name) > 255:
        raise _invalid("first_name", "The first name must not be greater than 255 characters.")


def _normalise_meta(meta: Any) -> list[dict[str, Any]]:
    """`meta` as Referral Factory takes it: a list of {field: <campaign field label>, value}."""
    if meta is None:
        return []
    if not isinstance(meta, list) or not all(
        isinstance(m, dict) and isinstance(m.get("field"), str) for m in meta
    ):
        raise _invalid("meta", "The meta must be a list of {field, value} objects.")
    return [{"field": m["field"], "value": m.get("value")} for m in meta]


# --- HTTP ------------------------------------------------------------------------------------------------


def _error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"code": status, "message": message}, status_code=status)


def _int_param(request: Request, name: str, default: int) -> int:
    raw = request.query_params.get(name)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise _invalid(name, f"The {name.replace('_', ' ')} must be an integer.") from None
    if value < 1:
        raise _invalid(name, f"The {name.replace('_', ' ')} must be at least 1.")
    return value


def _paginate(request: Request, items: list[dict[str, Any]], shape: RfShape) -> dict[str, Any]:
    """Laravel's paginator with the query string kept in its links (so `links.next` keeps `per_page`), or
    only its documented part in the `minimal` envelope."""
    page = _int_param(request, "page", 1)
    per_page = min(_int_param(request, "per_page", PER_PAGE_DEFAULT), PER_PAGE_MAX)
    if shape.per_page == "ignored":
        per_page = PER_PAGE_DEFAULT
    total = len(items)
    last_page = max(1, math.ceil(total / per_page))
    start = (page - 1) * per_page
    chunk = items[start : start + per_page]

    def link(n: int) -> str:
        return str(request.url.include_query_params(page=n))

    if shape.envelope == "minimal":
        return {
            "data": chunk,
            "links": {"next": link(page + 1) if page < last_page else None},
            "meta": {"current_page": page},
        }
    return {
        "data": chunk,
        "links": {
            "first": link(1),
            "last": link(last_page),
            "prev": link(page - 1) if 1 < page <= last_page + 1 else None,
            "next": link(page + 1) if page < last_page else None,
        },
        "meta": {
            "current_page": page,
            "from": start + 1 if chunk else None,
            "last_page": last_page,
            "path": str(request.url.replace(query="")),
            "per_page": per_page,
            "to": start + len(chunk) if chunk else None,
            "total": total,
        },
    }


async def _json_body(request: Request) -> dict[str, Any]:
    try:
        body = await request.json()
    except ValueError:
        raise _invalid("body", "The request body must be a JSON object.") from None
    if not isinstance(body, dict):
        raise _invalid("body", "The request body must be a JSON object.")
    return body


_SEARCH_FIELDS = {"id", "campaign_id", "email", "type", "signed_up_at"}
_OPERATORS: dict[str, Callable[[Any, Any], Any]] = {
    "=": operator.eq,
    ">": operator.gt,
    ">=": operator.ge,
    "<": operator.lt,
    "<=": operator.le,
}
Predicate = Callable[[dict[str, Any]], bool]
Handler = Callable[[Request], Awaitable[Response]]


def _search_predicate(body: dict[str, Any]) -> Predicate:
    """`{"filters": {"value": [{field, value, operator}], "operator": "AND"|"OR"}}` as a user predicate."""
    filters = body.get("filters", {"value": [], "operator": "AND"})
    conditions = filters.get("value") if isinstance(filters, dict) else None
    joiner = str(filters.get("operator", "AND")).upper() if isinstance(filters, dict) else ""
    if not isinstance(conditions, list) or joiner not in ("AND", "OR"):
        raise _invalid("filters", "The filters must be {value: [...], operator: AND|OR}.")
    checks = []
    for cond in conditions:
        if not isinstance(cond, dict) or cond.get("field") not in _SEARCH_FIELDS:
            raise _invalid("filters", f"Filters work on the fields {', '.join(sorted(_SEARCH_FIELDS))}.")
        op = _OPERATORS.get(cond.get("operator", "="))
        if op is None:
            raise _invalid("filters", f"Unknown operator {cond.get('operator')!r}.")
        checks.append((cond["field"], op, cond.get("value")))

    def matches(user: dict[str, Any]) -> bool:
        results = []
        for name, op, value in checks:
            actual = user[name]
            if name == "email" and isinstance(value, str):
                actual, value = actual.lower(), value.lower()
            try:
                results.append(bool(op(actual, value)))
            except TypeError:
                results.append(False)
        return all(results) if joiner == "AND" else any(results)

    return matches


def routes(state: SandboxState) -> list[BaseRoute]:
    rf = state.rf

    def api(handler: Handler) -> Handler:
        """Bearer auth, the per-token rate limit, and Referral Factory's error bodies around a handler."""

        async def endpoint(request: Request) -> Response:
            header = request.headers.get("authorization", "")
            with state.lock:
                token_ok = secrets.compare_digest(header.encode(), f"Bearer {rf.token}".encode())
                refusal = rf.admit() if token_ok else None
            if not token_ok:
                return _error(401, "Unauthenticated.")
            if refusal == "blocked":
                return _error(403, "Your IP address has been blocked from accessing the API.")
            if refusal == "limited":
                # the real API documents no Retry-After header, so none is sent
                return _error(429, "Too Many Attempts.")
            try:
                return await handler(request)
            except RfValidationError as exc:
                return JSONResponse(exc.body(), status_code=422)
            except RfNotFoundError:
                return _error(404, "Not found.")

        return endpoint

    def users_sorted(predicate: Predicate | None = None) -> list[dict[str, Any]]:
        newest_first = rf.shape.order == "newest_first"
        ordered = sorted(rf.users.items(), reverse=newest_first)
        return [u for _, u in ordered if predicate is None or predicate(u)]

    async def list_campaigns(request: Request) -> Response:
        with state.lock:
            return JSONResponse(_paginate(request, [c for _, c in sorted(rf.campaigns.items())], rf.shape))

    async def get_campaign(request: Request) -> Response:
        with state.lock:
            return JSONResponse({"data": rf.campaign(request.path_params["identifier"])})

    async def list_users(request: Request) -> Response:
        # like the real API (as reported), filters in the query string such as campaign_id are ignored
        with state.lock:
            return JSONResponse(_paginate(request, users_sorted(), rf.shape))

    async def search_users(request: Request) -> Response:
        predicate = _search_predicate(await _json_body(request))
        with state.lock:
            return JSONResponse(_paginate(request, users_sorted(predicate), rf.shape))

    async def get_user(request: Request) -> Response:
        with state.lock:
            return JSONResponse({"data": rf.user(request.path_params["identifier"])})

    async def create_user(request: Request) -> Response:
        body = await _json_body(request)
        errors: dict[str, list[str]] = {}
        for name in ("campaign_id", "first_name", "email"):
            if body.get(name) in (None, ""):
                errors[name] = [f"The {name.replace('_', ' ')} field is required."]
        if errors:
            raise RfValidationError(errors)
        campaign_id = body["campaign_id"]
        if not isinstance(campaign_id, int) or isinstance(campaign_id, bool):
            raise _invalid("campaign_id", "The campaign id must be an integer.")
        with state.lock:
            referrer = _referrer(rf, campaign_id, body.get("referrer"))
            user = rf.create_user(
                campaign_id, body["first_name"], body["email"], referrer=referrer, meta=body.get("meta")
            )
            return JSONResponse({"data": user}, status_code=201)

    async def qualify(request: Request) -> Response:
        body = await _json_body(request)
        qualified = body.get("qualified")
        if not isinstance(qualified, bool):
            raise _invalid("qualified", "The qualified field must be true or false.")
        with state.lock:
            user = _user_to_qualify(rf, body)
            rf.qualification_calls += 1
            rf.set_qualified(user, qualified)
            return JSONResponse({"data": user})

    async def update_user(request: Request) -> Response:
        body = await _json_body(request)
        with state.lock:
            user = rf.user(request.path_params["identifier"])
            rf.update_user(
                user, first_name=body.get("first_name"), email=body.get("email"), meta=body.get("meta")
            )
            return JSONResponse({"data": user})

    async def delete_user(request: Request) -> Response:
        with state.lock:
            rf.delete_user(rf.user(request.path_params["identifier"]))
        return JSONResponse({"code": 200, "message": "User deleted."})

    return [
        Route("/campaigns", api(list_campaigns), methods=["GET"]),
        Route("/campaigns/{identifier}", api(get_campaign), methods=["GET"]),
        Route("/users", api(list_users), methods=["GET"]),
        Route("/users", api(create_user), methods=["POST"]),
        Route("/users/search", api(search_users), methods=["POST"]),
        Route("/users/qualification", api(qualify), methods=["PUT"]),
        Route("/users/{identifier}", api(get_user), methods=["GET"]),
        Route("/users/{identifier}", api(update_user), methods=["PUT"]),
        Route("/users/{identifier}", api(delete_user), methods=["DELETE"]),
    ]


def _referrer(rf: ReferralFactoryState, campaign_id: int, spec: Any) -> dict[str, Any] | None:
    """The Person Referring named by `{"field": "id"|"code"|"email", "value": ...}`, in the same campaign."""
    if spec is None:
        return None
    if (
        not isinstance(spec, dict)
        or spec.get("field") not in ("id", "code", "email")
        or spec.get("value") is None
    ):
        raise _invalid("referrer", "The referrer must be {field: id|code|email, value}.")
    field, value = spec["field"], spec["value"]
    try:
        if field == "email":
            return rf.user_by_email(campaign_id, str(value))
        found = rf.user(value) if field == "code" else rf.users[int(value)]
    except (RfNotFoundError, KeyError, ValueError):
        raise _invalid("referrer", "The selected referrer is invalid.") from None
    if found["campaign_id"] != campaign_id or (field == "code" and found["code"] != value):
        raise _invalid("referrer", "The selected referrer is invalid.")
    return found


def _as_int(value: Any) -> int | None:
    """An id as JSON may carry it: 12 or "12"."""
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str) and value.isdigit():
        return int(value)
    return None


def _user_to_qualify(rf: ReferralFactoryState, body: dict[str, Any]) -> dict[str, Any]:
    """The user named by `id`, or `code`, or `email` + `campaign_id`."""
    if body.get("id") is not None:
        user = rf.users.get(_as_int(body["id"]) or 0)
        if user is None:
            raise RfNotFoundError("user not found")
        return user
    if body.get("code") is not None:
        matches = [u for u in rf.users.values() if u["code"] == body["code"]]
        if not matches:
            raise RfNotFoundError("user not found")
        return matches[0]
    campaign_id = _as_int(body.get("campaign_id"))
    if body.get("email") is not None and campaign_id is not None:
        return rf.user_by_email(campaign_id, str(body["email"]))
    raise _invalid("id", "Identify the user by id, by code, or by email and campaign_id.")
