-- llmops.dev/TrainingJob: Pending, Initializing, Running, Retrying and Waiting are on their way
-- (status/jobs.py).
local degradedPhases = {Failed = true, Stopped = true, Blocked = true, Invalid = true}
local suspendedPhases = {Suspended = true}
local degradedRolloutStates = {}
local progressingRolloutStates = {}
