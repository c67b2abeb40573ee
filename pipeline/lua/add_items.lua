-- Register a batch of item ids for a job; returns the ids that are new, so a
-- source listed twice is processed once and a stray id is later "unexpected".
-- KEYS: items        ARGV: id...
local fresh = {}
for i = 1, #ARGV do
  if redis.call('SADD', KEYS[1], ARGV[i]) == 1 then
    fresh[#fresh + 1] = ARGV[i]
  end
end
return fresh
