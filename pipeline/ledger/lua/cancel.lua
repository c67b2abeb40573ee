-- Cancel a job that has not finished; returns 1 if this call cancelled it.
-- KEYS: job        ARGV: now
local state = redis.call('HGET', KEYS[1], 'state')
if state == 'queued' or state == 'running' then
  redis.call('HSET', KEYS[1], 'state', 'cancelled', 'finished_at', ARGV[1])
  return 1
end
return 0
