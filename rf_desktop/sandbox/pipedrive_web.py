"""Small HTML stand-ins for Pipedrive's web app, so "open in Pipedrive" works against the sandbox:
`/pd/deal/{id}`, `/pd/leads/inbox/{uuid}` and `/pd/person/{id}`. No token needed, like a logged-in browser.
Every value is escaped: names and custom field values come from referral sign-up forms."""

from __future__ import annotations

from html import escape
from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import HTMLResponse
from starlette.routing import BaseRoute, Route

from rf_desktop.sandbox import pipedrive_seed as seed
from rf_desktop.sandbox.pipedrive_values import display

if TYPE_CHECKING:
    from rf_desktop.sandbox.pipedrive import PipedriveState
    from rf_desktop.sandbox.state import SandboxState

Row = tuple[str, str]  # (label, HTML already escaped)

_PAGE = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{title} - Pipedrive (sandbox)</title>
<style>
body {{ font-family: system-ui, sans-serif; margin: 2rem auto; max-width: 48rem; color: #192435; }}
h1 {{ font-size: 1.5rem; }} .kind {{ color: #6b7280; text-transform: uppercase; font-size: .8rem; }}
table {{ border-collapse: collapse; width: 100%; }}
th, td {{ text-align: left; padding: .35rem .5rem; border-bottom: 1px solid #e5e7eb; vertical-align: top; }}
th {{ width: 35%; color: #4b5563; font-weight: 500; }} .note {{ background: #fef3c7; padding: .5rem; }}
</style></head>
<body><p class="kind">{kind} &middot; {company}</p><h1>{title}</h1>{note}
<table>{rows}</table></body></html>
"""


def _text(value: Any) -> str:
    return escape("" if value is None else str(value))


def _link(href: str, label: Any) -> str:
    return f'<a href="{escape(href)}">{_text(label)}</a>'


def _user(user_id: int | None) -> str:
    return _text(next((u["name"] for u in seed.USERS if u["id"] == user_id), user_id))


def _person_link(pd: PipedriveState, base: str, person_id: int | None) -> str:
    person = pd.persons.get(person_id) if person_id is not None else None
    return _link(f"{base}/person/{person['id']}", person["name"]) if person else ""


def _custom_rows(pd: PipedriveState, entity: str, record: dict[str, Any]) -> list[Row]:
    return [
        (field["field_name"], _text(display(field, record["custom_fields"].get(code))))
        for code, field in pd.custom_fields(entity).items()
    ]


def _page(kind: str, title: str, rows: list[Row], note: str = "") -> str:
    body = "".join(f"<tr><th>{escape(label)}</th><td>{html}</td></tr>" for label, html in rows)
    return _PAGE.format(
        title=_text(title),
        kind=escape(kind),
        company=_text(seed.COMPANY["company_name"]),
        rows=body,
        note=f'<p class="note">{note}</p>' if note else "",
    )


def _deal_page(pd: PipedriveState, base: str, deal: dict[str, Any]) -> str:
    stage = pd.stages.get(deal["stage_id"]) or {}
    pipeline = pd.pipelines.get(deal["pipeline_id"]) or {}
    source = deal["source_lead_id"]
    rows = [
        ("Value", _text(f"{deal['value']} {deal['currency']}")),
        ("Status", _text(deal["status"])),
        ("Pipeline", _text(pipeline.get("name"))),
        ("Stage", _text(stage.get("name"))),
        ("Person", _person_link(pd, base, deal["person_id"])),
        ("Owner", _user(deal["owner_id"])),
        ("Expected close date", _text(deal["expected_close_date"])),
        ("Converted from lead", _link(f"{base}/leads/inbox/{source}", source) if source else ""),
        ("Created", _text(deal["add_time"])),
        ("Updated", _text(deal["update_time"])),
        *_custom_rows(pd, "deal", deal),
    ]
    return _page("Deal", deal["title"], rows, "This deal was deleted." if deal["is_deleted"] else "")


def _lead_page(pd: PipedriveState, base: str, lead: dict[str, Any]) -> str:
    value = lead["value"]
    labels = ", ".join(pd.lead_labels[i]["name"] for i in lead["label_ids"] if i in pd.lead_labels)
    note = ""
    if lead["is_deleted"]:
        deal = next((d for d in pd.deals.values() if d["source_lead_id"] == lead["id"]), None)
        note = (
            "This lead was converted to the deal " + _link(f"{base}/deal/{deal['id']}", deal["title"])
            if deal
            else "This lead was deleted."
        )
    elif lead["is_archived"]:
        note = "This lead is archived."
    rows = [
        ("Value", _text(f"{value['amount']} {value['currency']}" if value else "")),
        ("Person", _person_link(pd, base, lead["person_id"])),
        ("Labels", _text(labels)),
        ("Owner", _user(lead["owner_id"])),
        ("Source", _text(lead["source_name"])),
        ("Expected close date", _text(lead["expected_close_date"])),
        ("Created", _text(lead["add_time"])),
        ("Updated", _text(lead["update_time"])),
        *_custom_rows(pd, "deal", lead),
    ]
    return _page("Lead", lead["title"], rows, note)


def _person_page(pd: PipedriveState, base: str, person: dict[str, Any]) -> str:
    deals = [d for d in pd.deals.values() if d["person_id"] == person["id"] and not d["is_deleted"]]
    leads = [
        lead for lead in pd.leads.values() if lead["person_id"] == person["id"] and not lead["is_deleted"]
    ]
    rows = [
        ("Email", _text(", ".join(e["value"] for e in person["emails"]))),
        ("Phone", _text(", ".join(p["value"] for p in person["phones"]))),
        ("Owner", _user(person["owner_id"])),
        ("Deals", ", ".join(_link(f"{base}/deal/{d['id']}", d["title"]) for d in deals)),
        ("Leads", ", ".join(_link(f"{base}/leads/inbox/{lead['id']}", lead["title"]) for lead in leads)),
        ("Created", _text(person["add_time"])),
        *_custom_rows(pd, "person", person),
    ]
    return _page("Person", person["name"], rows, "This person was deleted." if person["is_deleted"] else "")


def render_page(pd: PipedriveState, kind: str, ident: str, base: str = "") -> tuple[int, str]:
    """(status, HTML) of the `deal`, `lead` or `person` page; `base` prefixes the links between pages."""
    record: dict[str, Any] | None = None
    if kind == "lead":
        record = pd.leads.get(ident)
    elif ident.isdigit():
        record = (pd.deals if kind == "deal" else pd.persons).get(int(ident))
    if record is None:
        return 404, _page(kind.capitalize(), "Not found", [], f"There is no {escape(kind)} {_text(ident)}.")
    render = {"deal": _deal_page, "lead": _lead_page, "person": _person_page}[kind]
    return 200, render(pd, base, record)


def routes(state: SandboxState) -> list[BaseRoute]:
    def page(kind: str) -> Any:
        async def serve(request: Request) -> HTMLResponse:
            with state.lock:
                status, html = state.pd.web_page(
                    kind, request.path_params["id"], request.scope.get("root_path", "")
                )
            return HTMLResponse(html, status)

        return serve

    return [
        Route("/deal/{id}", page("deal"), methods=["GET"]),
        Route("/leads/inbox/{id}", page("lead"), methods=["GET"]),
        Route("/person/{id}", page("person"), methods=["GET"]),
    ]
