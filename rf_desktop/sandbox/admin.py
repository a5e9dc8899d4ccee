"""The sandbox's admin surface at /_sandbox: seed data, sign people up, act as the sales team, revoke
tokens, inject faults, move the clock, run the demo. JSON in and out, no auth: the sandbox only listens
on loopback.

Also the app's lifespan: it runs the demo while it is enabled and saves the state now and then.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from threading import RLock
from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from rf_desktop.sandbox.demo import DemoSimulation, fake_person
from rf_desktop.sandbox.faults import FaultConfig
from rf_desktop.sandbox.referral_factory import RfNotFoundError, RfShape, RfValidationError

if TYPE_CHECKING:
    from starlette.applications import Starlette

    from rf_desktop.sandbox.state import SandboxState

log = logging.getLogger(__name__)

SAVE_INTERVAL_SECONDS = 10.0
SUPERVISE_INTERVAL_SECONDS = 0.1
MAX_DEMO_SPEED = 1000.0


class AdminError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def _bad(message: str) -> AdminError:
    return AdminError(422, message)


async def _body(request: Request) -> dict[str, Any]:
    raw = await request.body()
    if not raw.strip():
        return {}
    try:
        body = await request.json()
    except ValueError:
        raise AdminError(400, "the request body is not valid JSON") from None
    if not isinstance(body, dict):
        raise AdminError(400, "the request body must be a JSON object")
    return body


def _int(body: dict[str, Any], name: str, default: int | None = None) -> int:
    value = body.get(name, default)
    if value is None:
        raise _bad(f"{name} is required")
    if not isinstance(value, int) or isinstance(value, bool):
        raise _bad(f"{name} must be an integer")
    return value


def _number(body: dict[str, Any], name: str) -> float:
    value = body.get(name)
    if not isinstance(value, int | float) or isinstance(value, bool):
        raise _bad(f"{name} must be a number")
    return float(value)


def _optional_str(body: dict[str, Any], name: str) -> str | None:
    value = body.get(name)
    if value is not None and (not isinstance(value, str) or not value.strip()):
        raise _bad(f"{name} must be a non-empty string")
    return value


def _meta(value: Any) -> Any:
    """Custom form fields as Referral Factory's list, or (for convenience) a label -> value object.
    Anything else goes on to Referral Factory's own validation."""
    if isinstance(value, dict):
        return [{"field": label, "value": v} for label, v in value.items()]
    return value


def _admin(
    handler: Callable[[Request], Awaitable[Any]], lock: RLock, status: int = 200
) -> Callable[[Request], Awaitable[Response]]:
    """JSON out, and every failure as a 4xx JSON `{"error": ...}` that says what was wrong."""

    async def endpoint(request: Request) -> Response:
        try:
            result = await handler(request)
            with lock:  # the result may be a live record: render it before anyone changes it
                return JSONResponse(result, status_code=status)
        except AdminError as exc:
            return JSONResponse({"error": exc.message}, status_code=exc.status)
        except RfValidationError as exc:
            return JSONResponse({"error": str(exc), "errors": exc.errors}, status_code=422)
        except RfNotFoundError as exc:
            return JSONResponse({"error": str(exc)}, status_code=404)
        except KeyError as exc:  # the simulated Pipedrive's way of saying "no such record"
            return JSONResponse({"error": str(exc.args[0])}, status_code=404)
        except ValueError as exc:
            return JSONResponse({"error": str(exc)}, status_code=422)

    return endpoint


def routes(state: SandboxState) -> list[BaseRoute]:
    def serve(
        handler: Callable[[Request], Awaitable[Any]], status: int = 200
    ) -> Callable[[Request], Awaitable[Response]]:
        return _admin(handler, state.lock, status)

    async def index(request: Request) -> dict[str, Any]:
        return {"endpoints": sorted(f"{' '.join(sorted(r.methods or []))} {r.path}" for r in table)}

    async def reset(request: Request) -> dict[str, Any]:
        state.reset()
        return {"reset": True}

    async def seed(request: Request) -> dict[str, Any]:
        body = await _body(request)
        with_fields = body.get("with_referral_fields", True)
        if not isinstance(with_fields, bool):
            raise _bad("with_referral_fields must be true or false")
        with state.lock:
            state.reset()
            state.pd.reset()
            state.pd.seed(with_referral_fields=with_fields)
        return {"reset": True, "with_referral_fields": with_fields}

    async def get_state(request: Request) -> dict[str, Any]:
        with state.lock:
            return {
                "rf": state.rf.to_json(),
                "pd": state.pd.snapshot(),
                "faults": {api: config.to_json() for api, config in state.faults.items()},
                "demo": {"enabled": state.demo_enabled, "speed": state.demo_speed},
                "clock": state.clock.iso(),
            }

    async def stats(request: Request) -> dict[str, Any]:
        traffic = state.stats.to_json()
        with state.lock:
            traffic["pd"]["usage"] = state.pd.limiter.usage()
            traffic["rf"]["qualifications"] = sum(1 for e in state.rf.qualification_log if e["qualified"])
            traffic["rf"]["qualification_calls"] = state.rf.qualification_calls
        return traffic

    async def rf_signup(request: Request) -> dict[str, Any]:
        body = await _body(request)
        campaign_id = _int(body, "campaign_id", 1)
        referrer_code = _optional_str(body, "referrer_code")
        with state.lock:
            person = fake_person(state.rf, campaign_id)
            return state.rf.sign_up(
                campaign_id,
                _optional_str(body, "first_name") or person.first_name,
                _optional_str(body, "email") or person.email,
                referrer_code=referrer_code,
                meta=_meta(body["meta"]) if "meta" in body else person.meta,
            )

    async def rf_referrer(request: Request) -> dict[str, Any]:
        body = await _body(request)
        campaign_id = _int(body, "campaign_id", 1)
        with state.lock:
            person = fake_person(state.rf, campaign_id, role="person_referring")
            return state.rf.create_user(
                campaign_id,
                _optional_str(body, "first_name") or person.first_name,
                _optional_str(body, "email") or person.email,
                source="Direct",
                meta=_meta(body["meta"]) if "meta" in body else person.meta,
            )

    async def get_rf_shape(request: Request) -> dict[str, Any]:
        with state.lock:
            return state.rf.shape.to_json()

    async def put_rf_shape(request: Request) -> dict[str, Any]:
        shape = RfShape.from_json(await _body(request))
        with state.lock:
            state.rf.shape = shape
        return shape.to_json()

    async def rf_dashboard_qualify(request: Request) -> dict[str, Any]:
        # someone qualifies the referral in Referral Factory's dashboard (or its own integrations, or
        # Zapier): not an API call, so not counted among the qualification calls
        with state.lock:
            user = state.rf.user(request.path_params["user_id"])
            state.rf.set_qualified(user, True)
            return user

    async def tokens(request: Request) -> dict[str, Any]:
        body = await _body(request)
        rf_token, pd_token = _optional_str(body, "rf"), _optional_str(body, "pd")
        if rf_token is None and pd_token is None:
            raise _bad("give a new token for rf, pd or both")
        with state.lock:
            state.rf.token = rf_token or state.rf.token
            state.pd.token = pd_token or state.pd.token
        return {"changed": [name for name, token in (("rf", rf_token), ("pd", pd_token)) if token]}

    async def convert_lead(request: Request) -> dict[str, Any]:
        body = await _body(request)
        stage_id = body.get("stage_id")
        if stage_id is not None:
            stage_id = _int(body, "stage_id")
        with state.lock:
            return state.pd.convert_lead(request.path_params["lead_id"], stage_id=stage_id)

    async def move_deal(request: Request) -> dict[str, Any]:
        stage_id = _int(await _body(request), "stage_id")
        with state.lock:
            return state.pd.move_deal(request.path_params["deal_id"], stage_id)

    async def deal_status(request: Request) -> dict[str, Any]:
        status = (await _body(request)).get("status")
        if status not in ("open", "won", "lost"):
            raise _bad("status must be open, won or lost")
        with state.lock:
            return state.pd.set_deal_status(request.path_params["deal_id"], status)

    async def delete_field(request: Request) -> dict[str, Any]:
        entity, code = request.path_params["entity"], request.path_params["field_code"]
        if entity not in ("person", "deal"):
            raise _bad("entity must be person or deal")
        with state.lock:
            state.pd.delete_field(entity, code)
        return {"deleted": {"entity": entity, "field_code": code}}

    async def put_faults(request: Request) -> dict[str, Any]:
        api = request.path_params["api"]
        if api not in state.faults:
            raise AdminError(404, "faults are set per API: rf or pd")
        config = FaultConfig.from_json(await _body(request))
        with state.lock:
            state.faults[api] = config
        return config.to_json()

    async def get_faults(request: Request) -> dict[str, Any]:
        with state.lock:
            return {api: config.to_json() for api, config in state.faults.items()}

    async def pd_plan(request: Request) -> dict[str, Any]:
        body = await _body(request)
        plan = body.get("plan")
        if not isinstance(plan, str):
            raise _bad("plan must be one of lite, growth, premium, ultimate")
        seats = _int(body, "seats", 1)
        with state.lock:
            state.pd.set_plan(plan, seats)
            return state.pd.limiter.usage()

    async def pd_budget(request: Request) -> dict[str, Any]:
        remaining = _int(await _body(request), "remaining")
        if remaining < 0:
            raise _bad("remaining must be at least 0")
        with state.lock:
            state.pd.set_daily_remaining(remaining)
            return state.pd.limiter.usage()

    async def pd_shape(request: Request) -> dict[str, Any]:
        """The Pipedrive modes where the public material allows more than one answer (docs/sandbox.md)."""
        body = await _body(request) if request.method == "PUT" else {}
        unknown = sorted(set(body) - {"time_zone", "rate_limit_headers", "conversion"})
        if unknown:
            raise _bad(f"unknown Pipedrive modes: {', '.join(unknown)}")
        if "rate_limit_headers" in body and not isinstance(body["rate_limit_headers"], bool):
            raise _bad("rate_limit_headers must be true or false")
        if body.get("conversion", "async") not in ("immediate", "async"):
            raise _bad("conversion must be immediate or async")
        with state.lock:
            pd = state.pd
            if "time_zone" in body:
                try:
                    pd.limiter.set_time_zone(str(body["time_zone"]))
                except (ValueError, KeyError):
                    raise _bad(f"unknown time zone {body['time_zone']!r}") from None
            pd.limiter.rate_limit_headers = body.get("rate_limit_headers", pd.limiter.rate_limit_headers)
            pd.conversion_mode = body.get("conversion", pd.conversion_mode)
            return {
                "time_zone": pd.limiter.zone.key,
                "rate_limit_headers": pd.limiter.rate_limit_headers,
                "conversion": pd.conversion_mode,
            }

    async def advance_clock(request: Request) -> dict[str, Any]:
        seconds = _number(await _body(request), "seconds")
        if seconds < 0:
            raise _bad("the clock only moves forward")
        state.clock.advance(seconds)
        return {"now": state.clock.iso()}

    async def demo(request: Request) -> dict[str, Any]:
        body = await _body(request)
        enabled = body.get("enabled", state.demo_enabled)
        if not isinstance(enabled, bool):
            raise _bad("enabled must be true or false")
        speed = _number(body, "speed") if "speed" in body else state.demo_speed
        if not 0 < speed <= MAX_DEMO_SPEED:
            raise _bad(f"speed must be above 0 and at most {MAX_DEMO_SPEED:g}")
        with state.lock:
            state.demo_enabled = enabled
            state.demo_speed = speed
        return {"enabled": enabled, "speed": speed}

    table: list[Route] = [
        Route("/", serve(index), methods=["GET"]),
        Route("/reset", serve(reset), methods=["POST"]),
        Route("/seed", serve(seed), methods=["POST"]),
        Route("/state", serve(get_state), methods=["GET"]),
        Route("/stats", serve(stats), methods=["GET"]),
        Route("/rf/signup", serve(rf_signup, 201), methods=["POST"]),
        Route("/rf/referrers", serve(rf_referrer, 201), methods=["POST"]),
        Route("/rf/shape", serve(get_rf_shape), methods=["GET"]),
        Route("/rf/shape", serve(put_rf_shape), methods=["PUT"]),
        Route("/rf/users/{user_id:int}/qualify", serve(rf_dashboard_qualify), methods=["POST"]),
        Route("/tokens", serve(tokens), methods=["PUT"]),
        Route("/pd/leads/{lead_id}/convert", serve(convert_lead), methods=["POST"]),
        Route("/pd/deals/{deal_id:int}/stage", serve(move_deal), methods=["POST"]),
        Route("/pd/deals/{deal_id:int}/status", serve(deal_status), methods=["POST"]),
        Route("/pd/fields/{entity}/{field_code}", serve(delete_field), methods=["DELETE"]),
        Route("/faults", serve(get_faults), methods=["GET"]),
        Route("/faults/{api}", serve(put_faults), methods=["PUT"]),
        Route("/pd/plan", serve(pd_plan), methods=["PUT"]),
        Route("/pd/budget", serve(pd_budget), methods=["PUT"]),
        Route("/pd/shape", serve(pd_shape), methods=["GET", "PUT"]),
        Route("/clock/advance", serve(advance_clock), methods=["POST"]),
        Route("/demo", serve(demo), methods=["PUT"]),
    ]
    return list(table)


def lifespan(state: SandboxState) -> Callable[[Starlette], contextlib.AbstractAsyncContextManager[None]]:
    """The app's lifespan: a housekeeping task on the server's loop that runs the demo while
    `state.demo_enabled` is true (however it was set) and saves the state periodically."""

    @contextlib.asynccontextmanager
    async def run(app: Starlette) -> AsyncIterator[None]:
        task = asyncio.create_task(_housekeeping(state), name="rf-sandbox-housekeeping")
        try:
            yield
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    return run


async def _housekeeping(state: SandboxState) -> None:
    demo_task: asyncio.Task[None] | None = None
    loop = asyncio.get_running_loop()
    next_save = loop.time() + SAVE_INTERVAL_SECONDS
    try:
        while True:
            if state.demo_enabled and demo_task is None:
                demo_task = asyncio.create_task(
                    DemoSimulation(state, seed=state.demo_seed).run(), name="rf-demo"
                )
            elif demo_task is not None and (not state.demo_enabled or demo_task.done()):
                await _stop_demo(state, demo_task)
                demo_task = None
            if state.state_file is not None and loop.time() >= next_save:
                await asyncio.to_thread(state.save)
                next_save = loop.time() + SAVE_INTERVAL_SECONDS
            await asyncio.sleep(SUPERVISE_INTERVAL_SECONDS)
    finally:
        if demo_task is not None:
            await _stop_demo(state, demo_task)


async def _stop_demo(state: SandboxState, task: asyncio.Task[None]) -> None:
    task.cancel()
    await asyncio.wait([task])  # unlike `await task`, never swallows a cancellation of the caller
    if not task.cancelled() and task.exception() is not None:
        # a crashed demo is a bug in the sandbox; it stays off instead of crashing again every tick
        log.error("the sandbox demo stopped", exc_info=task.exception())
        with state.lock:
            state.demo_enabled = False
