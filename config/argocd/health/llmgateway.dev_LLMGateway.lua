-- Argo CD health of an llmgateway.dev/v1alpha1 LLMGateway, from the conditions llmgw writes.
-- Modelled on Argo CD's own Deployment check: Progressing until the operator has observed
-- the current generation and the gateway's pods serve it, Degraded when it cannot get there.
--   Accepted=False                 -> Degraded     (the spec is invalid; the running gateway is kept)
--   RolledBack=True                -> Degraded     (a revision failed and was rolled back)
--   Programmed=False, Pending      -> Progressing  (a new revision is being applied)
--   Programmed=False, other reason -> Degraded     (e.g. ConfigTooLarge, ApplyFailed)
--   Ready=False, ProgressDeadlineExceeded -> Degraded; other reasons -> Progressing
--   CacheAvailable=False           -> Degraded     (serving, but without its Redis cache)
--   otherwise                      -> Healthy, with the Ready message
local hs = {}

local function condition(ctype)
  if obj.status == nil or obj.status.conditions == nil then
    return nil
  end
  for _, c in ipairs(obj.status.conditions) do
    if c.type == ctype then
      return c
    end
  end
  return nil
end

local function describe(c)
  local reason = c.reason or c.type
  if c.message ~= nil and c.message ~= "" then
    return c.type .. " " .. reason .. ": " .. c.message
  end
  return c.type .. " " .. reason
end

local function stale(c)
  local generation = obj.metadata.generation
  return generation ~= nil and c.observedGeneration ~= nil and c.observedGeneration < generation
end

local generation = obj.metadata.generation
if obj.status == nil or obj.status.observedGeneration == nil then
  hs.status = "Progressing"
  hs.message = "Waiting for the llmgw operator to observe the gateway"
  return hs
end
if generation ~= nil and obj.status.observedGeneration < generation then
  hs.status = "Progressing"
  hs.message = "Waiting for the llmgw operator to observe generation " .. generation
  return hs
end

local accepted = condition("Accepted")
if accepted ~= nil and accepted.status == "False" then
  hs.status = "Degraded"
  hs.message = describe(accepted)
  return hs
end

local rolledBack = condition("RolledBack")
if rolledBack ~= nil and rolledBack.status == "True" then
  hs.status = "Degraded"
  hs.message = describe(rolledBack)
  return hs
end

local programmed = condition("Programmed")
if programmed == nil or stale(programmed) then
  hs.status = "Progressing"
  hs.message = "Waiting for the current revision to be rendered and applied"
  return hs
end
if programmed.status ~= "True" then
  if programmed.reason == "Pending" or programmed.status == "Unknown" then
    hs.status = "Progressing"
  else
    hs.status = "Degraded"
  end
  hs.message = describe(programmed)
  return hs
end

local ready = condition("Ready")
if ready == nil or stale(ready) then
  hs.status = "Progressing"
  hs.message = "Waiting for the gateway Deployment to report its replicas"
  return hs
end
if ready.status ~= "True" then
  if ready.reason == "ProgressDeadlineExceeded" then
    hs.status = "Degraded"
    hs.message = describe(ready)
    return hs
  end
  if ready.reason ~= "ScaledToZero" then
    hs.status = "Progressing"
    hs.message = describe(ready)
    return hs
  end
end

local cache = condition("CacheAvailable")
if cache ~= nil and cache.status == "False" then
  hs.status = "Degraded"
  hs.message = describe(cache)
  return hs
end

hs.status = "Healthy"
hs.message = "revision " .. (obj.status.revision or "?") .. ": " .. (ready.message or "ready")
if obj.status.excluded ~= nil and #obj.status.excluded > 0 then
  hs.message = hs.message .. "; " .. #obj.status.excluded .. " object(s) left out, see status.excluded"
end
return hs
