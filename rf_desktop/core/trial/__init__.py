"""The "send test referral" run, by job: `steps` (its vocabulary), `plan` (what it will do, and what keeps
it from starting), `run` (TrialRun: the steps, waiting for the sync), `fields` (did the mapped values
arrive), `cleanup` (removing exactly what it made) and `report` (the text to send to support)."""
