-- Shared body of every llmops.dev health check (the chart prepends the kind's rules: see <Kind>.lua).
-- Argo CD runs it with `obj` (the live object) and reads hs.status and hs.message.
-- Order matters: a status about an older generation says nothing about the current spec, so it is
-- Progressing before anything else; a failure beats Ready (a rolled-back release still serves, but
-- the change that was synced did not land); Ready=True is Healthy; everything else is on its way.
local hs = {}

local function condition(status, type)
  if status.conditions == nil then
    return nil
  end
  for _, c in ipairs(status.conditions) do
    if c.type == type then
      return c
    end
  end
  return nil
end

local function explain(c, fallback)
  if c == nil then
    return fallback
  end
  if c.message ~= nil and c.message ~= "" then
    return c.message
  end
  if c.reason ~= nil and c.reason ~= "" then
    return c.reason
  end
  return fallback
end

local status = obj.status
if status == nil then
  hs.status = "Progressing"
  hs.message = "Waiting for the operator to report status"
  return hs
end

local generation = obj.metadata.generation
if generation ~= nil and (status.observedGeneration == nil or status.observedGeneration < generation) then
  hs.status = "Progressing"
  hs.message = "Waiting for the operator to observe generation " .. tostring(generation)
  return hs
end

local ready = condition(status, "Ready")
local phase = status.phase or ""
local rolloutState = ""
if status.rollout ~= nil and status.rollout.state ~= nil then
  rolloutState = status.rollout.state
end

if ready ~= nil and ready.status == "False" and ready.reason == "InvalidSpec" then
  hs.status = "Degraded"
  hs.message = explain(ready, "The spec is invalid")
  return hs
end

-- kstatus: the operator cannot make progress without someone acting (an API refusal, a missing engine CRD, a
-- child name held by a foreign object); the condition carries the reason and the API server's message.
local stalled = condition(status, "Stalled")
if stalled ~= nil and stalled.status == "True" then
  hs.status = "Degraded"
  hs.message = (stalled.reason or "Stalled") .. ": " .. explain(stalled, "the operator cannot make progress")
  return hs
end

if degradedPhases[phase] or degradedRolloutStates[rolloutState] then
  hs.status = "Degraded"
  local detail = explain(ready, phase)
  if degradedRolloutStates[rolloutState] and status.rollout.message ~= nil and status.rollout.message ~= "" then
    detail = status.rollout.message
  end
  hs.message = phase .. ": " .. detail
  return hs
end

if suspendedPhases[phase] then
  hs.status = "Suspended"
  hs.message = explain(condition(status, "Suspended"), "Suspended")
  return hs
end

if progressingRolloutStates[rolloutState] then
  hs.status = "Progressing"
  local detail = rolloutState
  if status.rollout.message ~= nil and status.rollout.message ~= "" then
    detail = status.rollout.message
  end
  hs.message = "Rollout " .. rolloutState .. ": " .. detail
  return hs
end

if ready ~= nil and ready.status == "True" then
  hs.status = "Healthy"
  hs.message = explain(ready, phase)
  return hs
end

hs.status = "Progressing"
if phase ~= "" then
  hs.message = phase .. ": " .. explain(ready, "waiting for Ready")
else
  hs.message = explain(ready, "Waiting for Ready")
end
return hs
