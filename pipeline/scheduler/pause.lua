-- Pause or resume a schedule.
-- KEYS: defs, paused, state, rev      ARGV: name, 'pause'|'resume', now_ms
-- Returns -1 for an unknown name, 1 if this changed it, 0 if it already was so.
local defs, paused, state, rev = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local name, mode, now_ms = ARGV[1], ARGV[2], ARGV[3]
if redis.call('HEXISTS', defs, name) == 0 then return -1 end
local changed
if mode == 'pause' then
  changed = redis.call('SADD', paused, name)
else
  changed = redis.call('SREM', paused, name)
  -- Fire times that passed while paused are skipped, not caught up: the cursor moves to now.
  local cursor = tonumber(redis.call('HGET', state, 'cursor') or '0')
  if changed == 1 and tonumber(now_ms) > cursor then redis.call('HSET', state, 'cursor', now_ms) end
end
redis.call('INCR', rev)
return changed
