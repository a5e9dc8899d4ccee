"""The sandbox as one ASGI app: Referral Factory, Pipedrive and the admin surface on one port."""

from __future__ import annotations

from starlette.applications import Starlette
from starlette.routing import Mount

from rf_desktop.sandbox import admin, pipedrive, referral_factory
from rf_desktop.sandbox.faults import FaultMiddleware
from rf_desktop.sandbox.state import SandboxState

RF_PREFIX = "/rf/api/v2"
PD_PREFIX = "/pd"
ADMIN_PREFIX = "/_sandbox"


def create_app(state: SandboxState) -> Starlette:
    app = Starlette(
        routes=[
            Mount(RF_PREFIX, routes=referral_factory.routes(state)),
            Mount(PD_PREFIX, routes=pipedrive.routes(state)),
            Mount(ADMIN_PREFIX, routes=admin.routes(state)),
        ],
        lifespan=admin.lifespan(state),
    )
    # faults wrap everything except the admin surface (the middleware checks the prefix)
    app.add_middleware(FaultMiddleware, state=state)
    app.state.sandbox = state
    return app
