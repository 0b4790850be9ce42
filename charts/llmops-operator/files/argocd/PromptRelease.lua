-- llmops.dev/PromptRelease: a walking canary (Evaluating, Progressing) is Progressing and a held fixed
-- canary Healthy; a failed evaluation or a rollback is Degraded until the spec changes, as an aborted
-- Argo Rollout is (status/rollout.py).
local degradedPhases = {EvaluationFailed = true, RolledBack = true, Invalid = true}
local suspendedPhases = {}
local degradedRolloutStates = {EvaluationFailed = true, RolledBack = true}
local progressingRolloutStates = {Evaluating = true, Progressing = true}
