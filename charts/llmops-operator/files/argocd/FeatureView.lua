-- llmops.dev/FeatureView: Registering and Materializing are on their way (status/featureview.py).
local degradedPhases = {Failed = true, Invalid = true}
local suspendedPhases = {}
local degradedRolloutStates = {}
local progressingRolloutStates = {}
