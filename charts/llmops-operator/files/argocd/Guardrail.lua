-- llmops.dev/Guardrail: Pending until the compiled policy ConfigMap exists (status/guardrail.py).
local degradedPhases = {Invalid = true}
local suspendedPhases = {}
local degradedRolloutStates = {}
local progressingRolloutStates = {}
