-- Admit a chunk of an image job's items into its frontier (seen-set first, so a
-- source listed twice is one item). Items wait there until a claim dispatches
-- them within the job's window: no job can fill the queues ahead of another.
-- KEYS: items, urls, frontier        ARGV: (id, src, kind)...   kind: i = URL, f = local file
-- Returns the ids that were new.
local fresh = {}
for i = 1, #ARGV, 3 do
  local id = ARGV[i]
  if redis.call('SADD', KEYS[1], id) == 1 then
    redis.call('HSET', KEYS[2], id, cjson.encode({ARGV[i + 1], 0, ARGV[i + 2]}))
    redis.call('ZADD', KEYS[3], -1, id)
    fresh[#fresh + 1] = id
  end
end
return fresh
