-- Argo CD health check for paddock.dev/AgentRun (argocd-cm key
-- resource.customizations.health.paddock.dev_AgentRun). Argo CD sets `obj`; the check returns
-- {status, message}. Argo CD runs it in gopher-lua (Lua 5.1) with only the base, package and table
-- libraries (and a safe os): no string library. Tested in gopher-lua, loaded as Argo CD loads it,
-- by charts/paddock/argocd/gopherlua (CTest chart.argocd-health).
--
--   Pending, Running                 Progressing  (also before the operator has seen the spec)
--   AwaitingApproval                 Suspended    (a person has to approve a gated stage)
--   Succeeded                        Healthy
--   Cancelled with spec.cancel=true  Healthy      (what Git asked for happened)
--   Cancelled otherwise              Degraded
--   Failed, BudgetExceeded, TimedOut Degraded     (the run ended without doing its task)
local hs = {status = "Progressing", message = "Waiting for the Paddock operator"}

local function condition(status, kind)
  if status == nil or status.conditions == nil then return nil end
  for _, c in ipairs(status.conditions) do
    if c.type == kind then return c end
  end
  return nil
end

-- The most telling message: the condition named like the phase, else the outcome, else progress.
local function message(status, phase, fallback)
  for _, kind in ipairs({phase, "Succeeded", "BudgetExceeded", "Running", "Admitted"}) do
    local c = condition(status, kind)
    if c ~= nil and c.message ~= nil and c.message ~= "" then
      if c.reason ~= nil and c.reason ~= "" then return phase .. " (" .. c.reason .. "): " .. c.message end
      return phase .. ": " .. c.message
    end
  end
  return fallback
end

local status = obj.status
if status == nil or status.phase == nil or status.phase == "" then return hs end
local generation = obj.metadata and obj.metadata.generation
if generation ~= nil and status.observedGeneration ~= nil and status.observedGeneration < generation then
  hs.message = "Waiting for the operator to observe generation " .. tostring(generation)
  return hs
end

local phase = status.phase
if phase == "Succeeded" then
  hs.status = "Healthy"
  hs.message = message(status, phase, "The run succeeded")
elseif phase == "Pending" or phase == "Running" then
  hs.status = "Progressing"
  -- No string library: Argo CD opens only base, package, table and a safe os for a health check.
  hs.message = message(status, phase, phase == "Pending" and "The run is pending" or "The run is running")
elseif phase == "AwaitingApproval" then
  hs.status = "Suspended"
  local waiting = {}
  if status.stages ~= nil then
    for _, s in ipairs(status.stages) do
      if s.phase == "AwaitingApproval" then table.insert(waiting, s.name) end
    end
  end
  if #waiting > 0 then
    hs.message = "Awaiting approval of stage " .. table.concat(waiting, ", ")
  else
    hs.message = "Awaiting approval"
  end
elseif phase == "Cancelled" then
  if obj.spec ~= nil and obj.spec.cancel == true then
    hs.status = "Healthy"
    hs.message = message(status, phase, "Cancelled as spec.cancel asks")
  else
    hs.status = "Degraded"
    hs.message = message(status, phase, "The run was cancelled")
  end
elseif phase == "Failed" or phase == "BudgetExceeded" or phase == "TimedOut" then
  hs.status = "Degraded"
  hs.message = message(status, phase, "The run ended " .. phase)
else
  hs.status = "Unknown"
  hs.message = "Unknown phase " .. tostring(phase)
end
return hs
