-- Runs health.lua as Argo CD does (a fresh environment with `obj` set) against sample AgentRuns.
-- Usage: lua5.4 health_test.lua [path/to/health.lua]. Exits non-zero when a case fails.
local script = arg[1] or "health.lua"

local function check(obj)
  local env = setmetatable({obj = obj}, {__index = _G})
  local chunk, err = loadfile(script, "t", env)
  if chunk == nil then error(err) end
  return chunk()
end

local function run(phase, extra)
  local o = {apiVersion = "paddock.dev/v1alpha1", kind = "AgentRun",
             metadata = {name = "fix-refund-flake", namespace = "payments", generation = 1},
             spec = {task = "Fix the flaky refund test.", idempotencyKey = "refund-flake-1"},
             status = {phase = phase, observedGeneration = 1, conditions = {}}}
  for k, v in pairs(extra or {}) do o.status[k] = v end
  return o
end

local cases = {
  {"no status yet", {metadata = {name = "r", generation = 1}, spec = {}}, "Progressing", "Waiting for the Paddock operator"},
  {"empty status", {metadata = {name = "r", generation = 1}, spec = {}, status = {}}, "Progressing", "Waiting"},
  {"pending", run("Pending", {conditions = {{type = "Admitted", status = "True", reason = "PolicyMatched",
                                            message = "admitted by policy payments"}}}),
   "Progressing", "Pending (PolicyMatched): admitted by policy payments"},
  {"running", run("Running", {conditions = {{type = "Admitted", status = "True", message = "admitted"},
                                            {type = "Running", status = "True", reason = "PodRunning",
                                             message = "the agent is working"}}}),
   "Progressing", "Running (PodRunning): the agent is working"},
  {"awaiting approval", run("AwaitingApproval", {stages = {{name = "agent", phase = "Succeeded"},
                                                           {name = "pr", phase = "AwaitingApproval"}}}),
   "Suspended", "Awaiting approval of stage pr"},
  {"awaiting approval, no stages", run("AwaitingApproval"), "Suspended", "Awaiting approval"},
  {"succeeded", run("Succeeded", {conditions = {{type = "Succeeded", status = "True", reason = "Completed",
                                                 message = "the agent finished its task"}}}),
   "Healthy", "Succeeded (Completed): the agent finished its task"},
  {"succeeded without conditions", run("Succeeded"), "Healthy", "The run succeeded"},
  {"failed", run("Failed", {conditions = {{type = "Succeeded", status = "False", reason = "AgentFailed",
                                           message = "the agent exited with code 2"}}}),
   "Degraded", "Failed (AgentFailed): the agent exited with code 2"},
  {"budget exceeded", run("BudgetExceeded", {conditions = {{type = "BudgetExceeded", status = "True", reason = "Tokens",
                                                            message = "tokens 1500001 of 1500000"}}}),
   "Degraded", "BudgetExceeded (Tokens): tokens 1500001 of 1500000"},
  {"timed out", run("TimedOut", {conditions = {{type = "Succeeded", status = "False", reason = "WallClockExceeded",
                                                message = "ran for 45m"}}}),
   "Degraded", "TimedOut (WallClockExceeded): ran for 45m"},
  {"cancelled by spec.cancel", (function() local o = run("Cancelled"); o.spec.cancel = true; return o end)(),
   "Healthy", "Cancelled as spec.cancel asks"},
  {"cancelled otherwise", run("Cancelled"), "Degraded", "The run was cancelled"},
  {"stale status", (function() local o = run("Succeeded"); o.metadata.generation = 2; return o end)(),
   "Progressing", "Waiting for the operator to observe generation 2"},
  {"unknown phase", run("Exploded"), "Unknown", "Unknown phase Exploded"},
}

local passed, failed = 0, 0
for _, c in ipairs(cases) do
  local name, obj, want_status, want_message = c[1], c[2], c[3], c[4]
  local ok, hs = pcall(check, obj)
  if not ok then
    failed = failed + 1
    print("FAIL " .. name .. ": " .. tostring(hs))
  elseif hs.status ~= want_status or string.find(hs.message or "", want_message, 1, true) ~= 1 then
    failed = failed + 1
    print(string.format("FAIL %s: got {%s, %q}, want {%s, %q...}", name, tostring(hs.status), tostring(hs.message),
                        want_status, want_message))
  else
    passed = passed + 1
    print("ok   " .. name .. ": " .. hs.status .. " - " .. hs.message)
  end
end
print(string.format("%d passed, %d failed", passed, failed))
os.exit(failed == 0 and 0 or 1)
