-- llmops.dev/InferenceService: Pending and Deploying are on their way; Degraded mirrors KServe's Ready=False;
-- Canary is a Ready traffic split; Stopped is the budget's Stop action holding it, not serving (status/inferenceservice.py).
local degradedPhases = {Degraded = true, Stopped = true, Invalid = true}
local suspendedPhases = {}
local degradedRolloutStates = {}
local progressingRolloutStates = {}
