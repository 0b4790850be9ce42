-- llmops.dev/FineTune: as TrainingJob, and a failed quality or safety gate (GateFailed) is Degraded
-- (status/finetune.py).
local degradedPhases = {Failed = true, GateFailed = true, Stopped = true, Blocked = true, Invalid = true}
local suspendedPhases = {Suspended = true}
local degradedRolloutStates = {}
local progressingRolloutStates = {}
