"""The serving data path: prompt routing, the guardrail runtime's metrics and the sandbox's model server."""
