-- llmops.dev/InferenceService: Pending and Deploying are on their way; Degraded mirrors KServe's Ready=False;
-- Canary is a Ready traffic split (status/inferenceservice.py).
local degradedPhases = {Degraded = true, Invalid = true}
local suspendedPhases = {}
local degradedRolloutStates = {}
local progressingRolloutStates = {}
