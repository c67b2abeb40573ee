-- Claim output file names for a batch in one round trip. Per item, the
-- plain name if free (or already this item's), else the name with a short
-- hash of the source, else with the full hash. Idempotent for a re-delivery.
-- KEYS: names        ARGV: (id, name, alt, alt2)...      Returns the chosen names.
local function claim(name, id)
  return redis.call('HSETNX', KEYS[1], name, id) == 1 or redis.call('HGET', KEYS[1], name) == id
end
local out = {}
for i = 1, #ARGV, 4 do
  local id = ARGV[i]
  if claim(ARGV[i + 1], id) then
    out[#out + 1] = ARGV[i + 1]
  elseif claim(ARGV[i + 2], id) then
    out[#out + 1] = ARGV[i + 2]
  else
    claim(ARGV[i + 3], id)
    out[#out + 1] = ARGV[i + 3]
  end
end
return out
