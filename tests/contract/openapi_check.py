"""Validate Pipedrive requests and responses against Pipedrive's official OpenAPI specs (openapi-core).

Used two ways:
- the sandbox's contract tests send real HTTP to the simulated Pipedrive and validate every exchange;
- the core client's tests validate the requests rf-desktop's own Pipedrive client sends
  (`load_contract(reference_dir)`, then `contract.errors(request, response)` or `contract.hooks(failures)`).

Any Pipedrive base works: the part of the URL path from `/api/v1/`, `/v1/` or `/api/v2/` on is mapped onto
the spec servers `https://api.pipedrive.com/v1` and `https://api.pipedrive.com/api/v2`, so the sandbox's
`http://127.0.0.1:PORT/pd/api/v2/deals` is checked as `https://api.pipedrive.com/api/v2/deals`.

The specs are strict and not perfect. Where Pipedrive's documentation (or its own example) says
otherwise, the sandbox follows the documentation, and the spec is patched at load time by the entries of
`KNOWN_SPEC_DEVIATIONS`, each with its reason; nothing else is relaxed. Responses whose status the spec
does not document (most error answers) are checked against the error envelopes the documentation shows.
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import jsonschema
import yaml
from openapi_core import Config, OpenAPI
from openapi_core.datatypes import RequestParameters
from openapi_core.templating.responses.exceptions import ResponseNotFound
from werkzeug.datastructures import Headers, ImmutableMultiDict

SPEC_DIR = Path("pipedrive-openapi")
SPEC_FILES = {"v1": "pipedrive-openapi-v1.yaml", "v2": "pipedrive-openapi-v2.yaml"}
SPEC_HOST = "https://api.pipedrive.com"
# where each version's paths start in a request URL, and what the spec calls that prefix
_PREFIXES = (("/api/v2/", "v2", "/api/v2/"), ("/api/v1/", "v1", "/v1/"), ("/v1/", "v1", "/v1/"))

Spec = dict[str, Any]
Operation = tuple[str, str]  # (method, path as in the spec)


# --- patching helpers ------------------------------------------------------------------------------


def _resolve(spec: Spec, node: Any) -> Any:
    while isinstance(node, dict) and "$ref" in node:
        target: Any = spec
        for part in node["$ref"].lstrip("#/").split("/"):
            target = target[part]
        node = target
    return node


def _subschemas(spec: Spec, schema: Any, seen: set[int] | None = None) -> Iterator[dict[str, Any]]:
    """Every schema object reachable from `schema` (through $ref, allOf/anyOf/oneOf, properties, items)."""
    seen = set() if seen is None else seen
    schema = _resolve(spec, schema)
    if not isinstance(schema, dict) or id(schema) in seen:
        return
    seen.add(id(schema))
    yield schema
    children = [*schema.get("allOf", []), *schema.get("anyOf", []), *schema.get("oneOf", [])]
    children += list((schema.get("properties") or {}).values())
    for key in ("items", "additionalProperties"):
        if isinstance(schema.get(key), dict):
            children.append(schema[key])
    for child in children:
        yield from _subschemas(spec, child, seen)


def _response_schemas(spec: Spec, operations: list[Operation]) -> Iterator[Any]:
    for method, path in operations:
        for response in spec["paths"][path][method.lower()]["responses"].values():
            for media in (_resolve(spec, response).get("content") or {}).values():
                yield media.get("schema")


def _nullable(operations: list[Operation], *names: str) -> Callable[[Spec], None]:
    """Make the named properties nullable wherever they appear in these operations' responses."""

    def patch(spec: Spec) -> None:
        for root in _response_schemas(spec, operations):
            for schema in _subschemas(spec, root):
                for name in names:
                    prop = (schema.get("properties") or {}).get(name)
                    if prop is not None:
                        _resolve(spec, prop)["nullable"] = True

    return patch


def _without_format(operations: list[Operation], *names: str) -> Callable[[Spec], None]:
    def patch(spec: Spec) -> None:
        for root in _response_schemas(spec, operations):
            for schema in _subschemas(spec, root):
                for name in names:
                    prop = (schema.get("properties") or {}).get(name)
                    if prop is not None:
                        _resolve(spec, prop).pop("format", None)

    return patch


def _enum_to_pattern(
    operations: list[Operation], params: tuple[str, ...], item: str, separator: str
) -> Callable[[Spec], None]:
    """Replace the single-value enum of these query parameters by a pattern: a `separator`-separated list
    of `item`, where `item` is a regex with `{choice}` standing for any of the enum's values."""

    def patch(spec: Spec) -> None:
        for method, path in operations:
            for param in spec["paths"][path][method.lower()].get("parameters", []):
                param = _resolve(spec, param)
                schema = _resolve(spec, param.get("schema"))
                if param["name"] in params and isinstance(schema, dict) and "enum" in schema:
                    choice = "(" + "|".join(re.escape(str(value)) for value in schema.pop("enum")) + ")"
                    one = item.format(choice=choice)
                    schema["pattern"] = f"^{one}({separator}{one})*$"

    return patch


# --- the deviations --------------------------------------------------------------------------------


@dataclass(frozen=True)
class SpecDeviation:
    """Where the sandbox (following Pipedrive's docs or observed behaviour) and the spec disagree."""

    spec: str  # "v1" or "v2"
    what: str
    reason: str
    patch: Callable[[Spec], None] | None = None  # None: the spec's schema already allows it


V2_LISTS: list[Operation] = [
    ("GET", "/deals"),
    ("GET", "/persons"),
    ("GET", "/pipelines"),
    ("GET", "/stages"),
    ("GET", "/deals/search"),
    ("GET", "/persons/search"),
    ("GET", "/leads/search"),
]
V2_DEALS: list[Operation] = [
    ("GET", "/deals"),
    ("POST", "/deals"),
    ("GET", "/deals/{id}"),
    ("PATCH", "/deals/{id}"),
]
V2_PERSONS: list[Operation] = [
    ("GET", "/persons"),
    ("POST", "/persons"),
    ("GET", "/persons/{id}"),
    ("PATCH", "/persons/{id}"),
]

KNOWN_SPEC_DEVIATIONS: list[SpecDeviation] = [
    SpecDeviation(
        "v2",
        "additional_data.next_cursor is null on the last page",
        "The pagination docs say next_cursor is null when there are no more items; the spec types it as a "
        "non-nullable string on most list endpoints (the Fields API already marks it nullable).",
        _nullable(V2_LISTS, "next_cursor"),
    ),
    SpecDeviation(
        "v2",
        "unset deal fields are null: person_id, org_id, stage_change_time, won_time, lost_time, "
        "expected_close_date, archive_time",
        "A deal without a person, organization, stage change, close or expected close date has null there "
        "(the docs' deal example shows null for close_time/archive_time); the spec types these as "
        "non-nullable integers and strings.",
        _nullable(
            V2_DEALS,
            "person_id",
            "org_id",
            "stage_change_time",
            "won_time",
            "lost_time",
            "expected_close_date",
            "archive_time",
        ),
    ),
    SpecDeviation(
        "v2",
        "unset person fields are null: org_id, picture_id, first_name, last_name",
        "A person without an organization or picture has null there; the spec types them as non-nullable.",
        _nullable(V2_PERSONS, "org_id", "picture_id", "first_name", "last_name"),
    ),
    SpecDeviation(
        "v2",
        "search hits without a person/organization/value have null there",
        "persons/search and leads/search items type organization, person, value and currency as "
        "non-nullable, while deals/search (same itemSearch backend) marks person and organization nullable "
        "and the docs' examples show null.",
        _nullable(
            [("GET", "/persons/search"), ("GET", "/leads/search")],
            "organization",
            "person",
            "value",
            "currency",
        ),
    ),
    SpecDeviation(
        "v2",
        "comma-separated query parameters (status, fields, include_fields)",
        "The parameter descriptions say 'comma separated string array' (e.g. status=open,won) but the "
        "schemas are single-value enums; each listed value is still checked against the enum.",
        _enum_to_pattern(
            [
                ("GET", "/deals"),
                ("GET", "/deals/{id}"),
                ("GET", "/persons"),
                ("GET", "/persons/{id}"),
                ("GET", "/persons/search"),
                ("GET", "/deals/search"),
                ("GET", "/leads/search"),
                ("GET", "/personFields"),
                ("GET", "/dealFields"),
            ],
            ("status", "fields", "include_fields"),
            "{choice}",
            ",",
        ),
    ),
    SpecDeviation(
        "v1",
        "leads sort takes 'field ASC, other DESC' clauses",
        "The parameter description says 'The field names and sorting mode separated by a comma "
        "(field_name_1 ASC, field_name_2 DESC)', but the schema is an enum of bare field names.",
        _enum_to_pattern(
            [("GET", "/leads"), ("GET", "/leads/archived")], ("sort",), "{choice}( (ASC|DESC))?", ", ?"
        ),
    ),
    SpecDeviation(
        "v1",
        "leadFields add_time/update_time are 'YYYY-MM-DD HH:MM:SS'",
        "The spec declares format date-time, but its own example (and every v1 field endpoint) uses the v1 "
        "'YYYY-MM-DD HH:MM:SS' form.",
        _without_format([("GET", "/leadFields")], "add_time", "update_time"),
    ),
    SpecDeviation(
        "v1",
        "v1 list pagination is additional_data.pagination {start, limit, more_items_in_collection, "
        "next_start}",
        "The leads and leadFields schemas put start/limit/more_items_in_collection directly under "
        "additional_data; the pagination docs and the spec's own leadFields example nest them under "
        "'pagination'. The schema's properties are optional, so no patch is needed.",
    ),
    SpecDeviation(
        "v2",
        "first_name/last_name accepted when creating a person",
        "The migration guide says a person needs name or both first_name and last_name; the POST /persons "
        "schema lists neither first_name nor last_name (it allows extra properties, so no patch).",
    ),
]


# --- documented error envelopes (for statuses the spec does not list) ------------------------------

_GATEWAY_ERROR = {  # 401 and 429 (core-api-concepts-responses, rate-limiting)
    "type": "object",
    "required": ["success", "error", "errorCode"],
    "properties": {
        "success": {"const": False},
        "error": {"type": "string"},
        "errorCode": {"type": "integer"},
    },
}
_API_ERROR = {  # 400/403/404/... with `code` on v2 schema validation failures
    "type": "object",
    "required": ["success", "error"],
    "properties": {
        "success": {"const": False},
        "error": {"type": "string"},
        "error_info": {"type": "string"},
        "code": {"type": "string"},
        "data": {"type": "null"},
        "additional_data": {"type": "null"},
    },
}


def _documented_error(response: httpx.Response) -> list[str]:
    if response.status_code == 403 and response.headers.get("content-type", "").startswith("text/html"):
        return []  # the edge's (Cloudflare) block page is HTML
    try:
        body = response.json()
    except ValueError:
        return [f"{response.status_code}: the body is not JSON"]
    schema = _GATEWAY_ERROR if response.status_code in (401, 429) else _API_ERROR
    validator = jsonschema.Draft7Validator(schema)
    return [
        f"{response.status_code} error envelope: {e.json_path}: {e.message}"
        for e in validator.iter_errors(body)
    ]


# --- request/response adapters for openapi-core ----------------------------------------------------


class _SpecRequest:
    """An httpx request as openapi-core sees it, moved onto the spec's server."""

    def __init__(self, request: httpx.Request, path: str) -> None:
        self.host_url = SPEC_HOST
        self.path = path
        self.method = request.method.lower()
        self.body = request.content or None
        self.content_type = request.headers.get("content-type", "application/json")
        self.parameters = RequestParameters(
            query=ImmutableMultiDict(list(request.url.params.multi_items())),
            header=Headers(list(request.headers.items())),
            cookie=ImmutableMultiDict(),
        )


class _SpecResponse:
    def __init__(self, response: httpx.Response) -> None:
        self.data = response.content
        self.status_code = response.status_code
        self.headers = Headers(list(response.headers.items()))
        self.content_type = response.headers.get("content-type", "application/json")


def spec_location(url: httpx.URL) -> tuple[str, str] | None:
    """(version, path on the spec server) for a Pipedrive API URL, or None for anything else."""
    path = url.path
    for marker, version, spec_prefix in _PREFIXES:
        index = path.find(marker)
        if index != -1:
            return version, spec_prefix + path[index + len(marker) :]
    return None


def _messages(errors: list[Exception]) -> list[str]:
    out = []
    for error in errors:
        cause = error.__cause__
        schema_errors = getattr(cause, "schema_errors", None) or getattr(error, "schema_errors", None)
        if schema_errors:
            out += [f"{type(error).__name__}: {e.json_path}: {e.message}" for e in schema_errors]
        else:
            out.append(f"{type(error).__name__}: {error}" + (f" ({cause})" if cause else ""))
    return out


# --- the contract ----------------------------------------------------------------------------------


class PipedriveContract:
    """Both Pipedrive specs, patched by `KNOWN_SPEC_DEVIATIONS`, loaded lazily (YAML takes about a second)."""

    def __init__(self, reference_dir: Path) -> None:
        self.spec_dir = reference_dir / SPEC_DIR
        self._raw: dict[str, Spec] = {}
        self._apis: dict[tuple[str, bool], OpenAPI] = {}

    def raw_spec(self, version: str) -> Spec:
        """The spec exactly as Pipedrive publishes it."""
        if version not in self._raw:
            with open(self.spec_dir / SPEC_FILES[version], encoding="utf-8") as handle:
                self._raw[version] = yaml.load(handle, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
        return self._raw[version]

    def openapi(self, version: str, *, patched: bool = True) -> OpenAPI:
        """The validator for one spec, patched by the known deviations (or exactly as published)."""
        key = (version, patched)
        if key not in self._apis:
            spec = json.loads(json.dumps(self.raw_spec(version)))  # a copy to patch
            for deviation in KNOWN_SPEC_DEVIATIONS:
                if patched and deviation.spec == version and deviation.patch is not None:
                    deviation.patch(spec)
            _api_token_only(spec)
            # the published specs are taken as they are: skip openapi-spec-validator's slow self-check
            self._apis[key] = OpenAPI.from_dict(spec, config=Config(spec_validator_cls=None))
        return self._apis[key]

    def token_cost(self, method: str, template: str) -> int | None:
        """The `x-token-cost` of an operation named as in core/token_costs (`/api/v2/deals/{id}`)."""
        version, path = (
            ("v2", template[len("/api/v2") :])
            if template.startswith("/api/v2/")
            else ("v1", template[len("/api/v1") :])
        )
        operation = self.raw_spec(version)["paths"].get(path, {}).get(method.lower())
        return None if operation is None else operation.get("x-token-cost")

    def request_errors(self, request: httpx.Request) -> list[str]:
        location = spec_location(request.url)
        if location is None:
            return [f"{request.url.path} is not a Pipedrive API path"]
        version, path = location
        return _messages(list(self.openapi(version).iter_request_errors(_SpecRequest(request, path))))

    def response_errors(
        self, request: httpx.Request, response: httpx.Response, *, patched: bool = True
    ) -> list[str]:
        location = spec_location(request.url)
        if location is None:
            return [f"{request.url.path} is not a Pipedrive API path"]
        version, path = location
        api = self.openapi(version, patched=patched)
        errors = list(api.iter_response_errors(_SpecRequest(request, path), _SpecResponse(response)))
        if errors and all(isinstance(e, ResponseNotFound) for e in errors):
            return _documented_error(response)
        return _messages(errors)

    def errors(self, request: httpx.Request, response: httpx.Response | None = None) -> list[str]:
        """Every way the request (and its response, when given) departs from the spec."""
        found = [f"request: {m}" for m in self.request_errors(request)]
        if response is not None:
            found += [f"response: {m}" for m in self.response_errors(request, response)]
        return [f"{request.method} {request.url.path}: {m}" for m in found]

    def assert_valid(self, response: httpx.Response) -> None:
        errors = self.errors(response.request, response)
        assert not errors, "\n".join(errors)

    def hooks(self, failures: list[str]) -> dict[str, list[Callable[[httpx.Response], None]]]:
        """httpx.Client event hooks validating every exchange into `failures`."""

        def on_response(response: httpx.Response) -> None:
            response.read()
            failures.extend(self.errors(response.request, response))

        return {"response": [on_response]}

    def async_hooks(self, failures: list[str]) -> dict[str, list[Callable[[httpx.Response], Any]]]:
        """httpx.AsyncClient event hooks validating every exchange into `failures`."""

        async def on_response(response: httpx.Response) -> None:
            await response.aread()
            failures.extend(self.errors(response.request, response))

        return {"response": [on_response]}


def _api_token_only(spec: Spec) -> None:
    """rf-desktop authenticates with the API token only, and openapi-core cannot check OAuth: keep the
    `api_key` (x-api-token header) requirement of every operation."""
    for item in spec["paths"].values():
        for operation in item.values():
            if isinstance(operation, dict) and "security" in operation:
                operation["security"] = [req for req in operation["security"] if "api_key" in req]


@functools.cache
def load_contract(reference_dir: Path) -> PipedriveContract:
    """The contract for `reference_dir` (the `reference_dir` fixture), one per process."""
    return PipedriveContract(reference_dir)


class ValidatingClients:
    """httpx clients for one Pipedrive base URL that validate every exchange against the specs;
    departures collect in `failures`. Close async clients yourself (`async with`)."""

    def __init__(self, contract: PipedriveContract, base_url: str, token: str) -> None:
        self.contract = contract
        self.base_url = base_url
        self.token = token
        self.failures: list[str] = []
        self._clients: list[httpx.Client] = []

    def _options(self, kwargs: dict[str, Any]) -> dict[str, Any]:
        headers = {"x-api-token": self.token, **kwargs.pop("headers", {})}
        return {"base_url": self.base_url, "headers": headers, "timeout": 10.0, **kwargs}

    def client(self, **kwargs: Any) -> httpx.Client:
        client = httpx.Client(event_hooks=self.contract.hooks(self.failures), **self._options(kwargs))
        self._clients.append(client)
        return client

    def async_client(self, **kwargs: Any) -> httpx.AsyncClient:
        return httpx.AsyncClient(
            event_hooks=self.contract.async_hooks(self.failures), **self._options(kwargs)
        )

    def close(self) -> None:
        for client in self._clients:
            client.close()
