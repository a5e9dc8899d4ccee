"""The contract itself: the token cost table matches the specs, each known deviation is needed and
explained, and the validator really rejects what the specs forbid."""

from __future__ import annotations

import json
import re
from pathlib import Path

import httpx
import pytest

from rf_desktop.core.token_costs import TOKEN_COSTS
from tests.contract.openapi_check import KNOWN_SPEC_DEVIATIONS, PipedriveContract, spec_location

_ENDPOINT_LINE = re.compile(r"^(GET|POST|PUT|PATCH|DELETE)\s+(\S+)\s+cost=(\d+)")


def test_token_costs_equal_the_specs_x_token_cost(pipedrive_contract: PipedriveContract) -> None:
    differences = {
        (method, template): (cost, pipedrive_contract.token_cost(method, template))
        for (method, template), cost in TOKEN_COSTS.items()
        if pipedrive_contract.token_cost(method, template) != cost
    }
    assert differences == {}, "table cost vs spec x-token-cost"


def test_token_costs_equal_the_published_endpoint_lists(reference_dir: Path) -> None:
    listed: dict[tuple[str, str], int] = {}
    for version in ("v1", "v2"):
        text = (reference_dir / "pipedrive-openapi" / f"ENDPOINTS-{version}-with-token-cost.txt").read_text()
        for line in text.splitlines():
            match = _ENDPOINT_LINE.match(line)
            if match:
                listed[(match[1], f"/api/{version}{match[2]}")] = int(match[3])
    assert {key: listed.get(key) for key in TOKEN_COSTS} == TOKEN_COSTS


@pytest.mark.parametrize("deviation", KNOWN_SPEC_DEVIATIONS, ids=lambda d: d.what[:40])
def test_each_known_deviation_is_explained_and_needed(
    pipedrive_contract: PipedriveContract, deviation
) -> None:
    assert deviation.spec in ("v1", "v2") and len(deviation.reason) > 40
    if deviation.patch is None:
        return
    spec = json.loads(json.dumps(pipedrive_contract.raw_spec(deviation.spec)))
    before = json.dumps(spec, sort_keys=True)
    deviation.patch(spec)
    assert json.dumps(spec, sort_keys=True) != before, "the patch no longer changes the spec: remove it"


def test_the_unpatched_spec_refuses_a_null_next_cursor(pipedrive_contract: PipedriveContract) -> None:
    """Why the first deviation exists: the documented last page does not validate against the raw spec."""
    request = httpx.Request("GET", "https://api.pipedrive.com/api/v2/pipelines", headers={"x-api-token": "t"})
    last_page = httpx.Response(
        200, json={"success": True, "data": [], "additional_data": {"next_cursor": None}}, request=request
    )
    assert pipedrive_contract.response_errors(request, last_page) == []
    assert any(
        "next_cursor" in e for e in pipedrive_contract.response_errors(request, last_page, patched=False)
    )


def test_the_validator_rejects_a_response_that_breaks_the_spec(pipedrive_contract: PipedriveContract) -> None:
    request = httpx.Request("GET", "http://127.0.0.1:9/pd/api/v2/deals/1", headers={"x-api-token": "t"})
    response = httpx.Response(
        200, json={"success": True, "data": {"id": "one", "value": "a lot"}}, request=request
    )
    errors = pipedrive_contract.errors(request, response)
    assert any("$.data.id" in e for e in errors) and any("$.data.value" in e for e in errors)


def test_the_validator_rejects_requests_that_break_the_spec(pipedrive_contract: PipedriveContract) -> None:
    bad_label = httpx.Request(
        "POST",
        "https://acme.pipedrive.com/api/v1/leads",
        headers={"x-api-token": "t"},
        json={"title": "x", "person_id": 1, "label_ids": ["hot"], "visible_to": 3},
    )
    errors = pipedrive_contract.request_errors(bad_label)
    assert any("label_ids" in e for e in errors) and any("visible_to" in e for e in errors)
    no_token = httpx.Request("GET", "https://api.pipedrive.com/api/v2/deals")
    assert any("Security" in e for e in pipedrive_contract.request_errors(no_token))
    limit_not_a_number = httpx.Request(
        "GET", "https://api.pipedrive.com/api/v2/deals?limit=many", headers={"x-api-token": "t"}
    )
    assert pipedrive_contract.request_errors(limit_not_a_number)


def test_undocumented_error_statuses_are_checked_against_the_documented_envelopes(
    pipedrive_contract: PipedriveContract,
) -> None:
    request = httpx.Request("GET", "https://api.pipedrive.com/api/v2/deals", headers={"x-api-token": "t"})
    good = httpx.Response(
        429, json={"success": False, "error": "Request over limit", "errorCode": 429}, request=request
    )
    bad = httpx.Response(429, json={"message": "slow down"}, request=request)
    html_block = httpx.Response(403, html="<html>blocked</html>", request=request)
    assert pipedrive_contract.response_errors(request, good) == []
    assert pipedrive_contract.response_errors(request, bad)
    assert pipedrive_contract.response_errors(request, html_block) == []


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("http://127.0.0.1:8123/pd/api/v2/deals/5", ("v2", "/api/v2/deals/5")),
        ("http://127.0.0.1:8123/pd/api/v1/leads", ("v1", "/v1/leads")),
        ("http://127.0.0.1:8123/pd/v1/users/me", ("v1", "/v1/users/me")),
        ("https://acme.pipedrive.com/api/v1/leadFields", ("v1", "/v1/leadFields")),
        ("https://api.pipedrive.com/v1/users/me", ("v1", "/v1/users/me")),
        ("http://127.0.0.1:8123/pd/deal/5", None),
    ],
)
def test_any_pipedrive_base_maps_onto_the_spec_servers(url: str, expected: tuple[str, str] | None) -> None:
    assert spec_location(httpx.URL(url)) == expected
