-- Argo CD health of an llmgateway.dev/v1alpha1 LLMProvider, from the conditions llmgw writes.
--   status.observedGeneration behind metadata.generation -> Progressing
--   Accepted=False (InvalidSpec, NotSelected, ...)        -> Degraded (left out of every gateway)
--   Accepted=True, Disabled                               -> Suspended (spec.enabled is false)
--   ResolvedRefs=False, ModelsAvailable=False             -> Degraded
--   BackendReady=False: NoReadyEndpoints -> Progressing (the backend is starting); other -> Degraded
--   otherwise                                             -> Healthy, with the Accepted message
-- Conditions whose status is Unknown (not checked or not probed yet) do not change the outcome.
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

local generation = obj.metadata.generation
if obj.status == nil or obj.status.observedGeneration == nil then
  hs.status = "Progressing"
  hs.message = "Waiting for the llmgw operator to observe the provider"
  return hs
end
if generation ~= nil and obj.status.observedGeneration < generation then
  hs.status = "Progressing"
  hs.message = "Waiting for the llmgw operator to observe generation " .. generation
  return hs
end

local accepted = condition("Accepted")
if accepted == nil then
  hs.status = "Progressing"
  hs.message = "Waiting for the llmgw operator to accept the provider"
  return hs
end
if accepted.status == "False" then
  hs.status = "Degraded"
  hs.message = describe(accepted)
  return hs
end
if accepted.reason == "Disabled" then
  hs.status = "Suspended"
  hs.message = describe(accepted)
  return hs
end

for _, ctype in ipairs({"ResolvedRefs", "BackendReady", "ModelsAvailable"}) do
  local c = condition(ctype)
  if c ~= nil and c.status == "False" then
    if c.reason == "NoReadyEndpoints" then
      hs.status = "Progressing"
    else
      hs.status = "Degraded"
    end
    hs.message = describe(c)
    return hs
  end
end

hs.status = "Healthy"
hs.message = accepted.message or "accepted"
return hs
