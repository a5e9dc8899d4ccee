"""Contract tests: the simulated Pipedrive against Pipedrive's official OpenAPI specs."""
