"""What each Pipedrive call costs against the company's daily token budget.

The figures are the `x-token-cost` of each operation in Pipedrive's official OpenAPI specs; the contract
tests check this table against the specs, so it cannot drift. The client uses it to account for its own
spending, and the sandbox uses it to charge requests, so both agree by construction.
"""

from __future__ import annotations

import re
from functools import lru_cache

# (method, path template relative to the Pipedrive base URL) -> tokens
TOKEN_COSTS: dict[tuple[str, str], int] = {
    ("GET", "/api/v1/users/me"): 2,
    ("GET", "/api/v1/users"): 20,
    ("GET", "/api/v1/leads"): 20,
    ("POST", "/api/v1/leads"): 10,
    ("GET", "/api/v1/leads/archived"): 40,
    ("GET", "/api/v1/leads/{id}"): 2,
    ("PATCH", "/api/v1/leads/{id}"): 10,
    ("DELETE", "/api/v1/leads/{id}"): 6,
    ("GET", "/api/v1/leadFields"): 20,
    ("GET", "/api/v1/leadLabels"): 10,
    ("GET", "/api/v2/personFields"): 10,
    ("POST", "/api/v2/personFields"): 5,
    ("GET", "/api/v2/personFields/{field_code}"): 1,
    ("DELETE", "/api/v2/personFields/{field_code}"): 3,
    ("GET", "/api/v2/dealFields"): 10,
    ("POST", "/api/v2/dealFields"): 5,
    ("GET", "/api/v2/dealFields/{field_code}"): 1,
    ("DELETE", "/api/v2/dealFields/{field_code}"): 3,
    ("GET", "/api/v2/pipelines"): 5,
    ("GET", "/api/v2/pipelines/{id}"): 1,
    ("GET", "/api/v2/stages"): 5,
    ("GET", "/api/v2/stages/{id}"): 1,
    ("GET", "/api/v2/persons"): 10,
    ("POST", "/api/v2/persons"): 5,
    ("GET", "/api/v2/persons/search"): 20,
    ("GET", "/api/v2/persons/{id}"): 1,
    ("PATCH", "/api/v2/persons/{id}"): 5,
    ("DELETE", "/api/v2/persons/{id}"): 3,
    ("GET", "/api/v2/deals"): 10,
    ("POST", "/api/v2/deals"): 5,
    ("GET", "/api/v2/deals/search"): 20,
    ("GET", "/api/v2/deals/{id}"): 1,
    ("PATCH", "/api/v2/deals/{id}"): 5,
    ("DELETE", "/api/v2/deals/{id}"): 3,
    ("GET", "/api/v2/leads/search"): 20,
    ("POST", "/api/v2/leads/{id}/convert/deal"): 40,
    ("GET", "/api/v2/leads/{id}/convert/status/{conversion_id}"): 1,
}

# Search endpoints share their own, tighter burst limit (10 requests per 2 s on every plan).
SEARCH_PATHS = frozenset(path for (_, path) in TOKEN_COSTS if path.endswith("/search"))

_PARAM = re.compile(r"\{[^/]+\}")


@lru_cache(maxsize=1)
def _compiled() -> list[tuple[str, re.Pattern[str], str, int]]:
    rows = []
    for (method, template), cost in TOKEN_COSTS.items():
        escaped = re.escape(template).replace(r"\{", "{").replace(r"\}", "}")
        pattern = re.compile("^" + _PARAM.sub("[^/]+", escaped) + "$")
        rows.append((method, pattern, template, cost))
    # literal segments beat parameters: /deals/search must not match /deals/{id}
    rows.sort(key=lambda row: row[2].count("{"))
    return rows


def match_template(method: str, path: str) -> tuple[str, int] | None:
    """The (template, cost) of a concrete Pipedrive path such as `/api/v2/deals/42`, or None if unknown."""
    for m, pattern, template, cost in _compiled():
        if m == method.upper() and pattern.match(path):
            return template, cost
    return None


def cost_of(method: str, path: str, default: int = 10) -> int:
    """Tokens a call costs; unknown calls are charged `default` so budgets stay conservative."""
    found = match_template(method, path)
    return found[1] if found else default
