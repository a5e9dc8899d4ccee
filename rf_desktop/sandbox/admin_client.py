"""Acting on a running sandbox from outside, through its admin surface: what the demo's simulated
salesperson does to the test referral's lead or deal so the qualification rule matches."""

from __future__ import annotations

import httpx

from rf_desktop.core import rules
from rf_desktop.core.config import QualificationRule
from rf_desktop.core.store import Referral


class SandboxAdmin:
    def __init__(self, admin_url: str, *, timeout: float = 10.0) -> None:
        self.admin_url = admin_url.rstrip("/")
        self.timeout = timeout

    async def act_as_salesperson(self, referral: Referral, rule: QualificationRule) -> str:
        """Do in the sandbox's Pipedrive what `rule` waits for (convert the lead, move the deal to the
        rule's stage, or mark it won); returns what was done, in the owner's words."""
        if rule.kind == "none":
            raise RuntimeError("There is no qualification rule to act on.")
        async with httpx.AsyncClient(base_url=self.admin_url, timeout=self.timeout) as http:
            if rule.kind in rules.LEAD_RULE_KINDS:
                if not referral.lead_id:
                    raise RuntimeError("The test referral has no lead yet.")
                body = {"stage_id": rule.stage_id} if rule.kind == "lead_converted_stage" else {}
                response = await http.post(f"/pd/leads/{referral.lead_id}/convert", json=body)
                done = f"converted lead {referral.lead_id} into deal {{id}}"
            elif referral.deal_id is None:
                raise RuntimeError("The test referral has no deal yet.")
            elif rule.kind == "deal_stage":
                response = await http.post(f"/pd/deals/{referral.deal_id}/stage", json={"stage_id": rule.stage_id})
                done = "moved deal {id} to the rule's stage"
            else:
                response = await http.post(f"/pd/deals/{referral.deal_id}/status", json={"status": "won"})
                done = "marked deal {id} as won"
        response.raise_for_status()
        return "Acting as the salesperson (demo): " + done.format(id=response.json().get("id")) + "."
