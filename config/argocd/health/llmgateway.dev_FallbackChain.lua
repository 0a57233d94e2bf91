-- Argo CD health of an llmgateway.dev/v1alpha1 FallbackChain, from the conditions llmgw writes.
--   status.observedGeneration behind metadata.generation -> Progressing
--   Accepted=False (FallbackCycle, UnknownModel, Conflict, NotSelected, ...) -> Degraded
--   otherwise -> Healthy, with the effective order of attempts the gateway will make
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
  hs.message = "Waiting for the llmgw operator to observe the chain"
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
  hs.message = "Waiting for the llmgw operator to accept the chain"
  return hs
end
if accepted.status ~= "True" then
  hs.status = "Degraded"
  hs.message = describe(accepted)
  return hs
end

hs.status = "Healthy"
hs.message = accepted.message or "accepted"
local order = obj.status.effectiveOrder
if order ~= nil and #order > 0 then
  hs.message = hs.message .. "; attempts: " .. table.concat(order, " -> ")
end
return hs
