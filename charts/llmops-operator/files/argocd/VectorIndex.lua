-- llmops.dev/VectorIndex: Ingesting is on its way; re-embedding keeps Ready (ServingPrevious), so it stays
-- Healthy while the previous collection serves (status/vectorindex.py).
local degradedPhases = {Failed = true, Invalid = true}
local suspendedPhases = {}
local degradedRolloutStates = {}
local progressingRolloutStates = {}
