-- A politeness slot for one request, enforced across the whole cluster:
-- at most `global` requests in flight for the job, `per_host` per host, and
-- `delay` seconds between request starts on a host. Slots are leases that
-- expire, so a dead worker cannot hold one for ever.
-- KEYS: job, job_slots, host_slots, host_next
-- ARGV: now, token, ttl, global, per_host, delay
-- Returns -1 if the job is over (cancelled or ended), 0 when acquired, else ms to wait.
local job, job_slots, host_slots, host_next = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local now, token, ttl = tonumber(ARGV[1]), ARGV[2], tonumber(ARGV[3])
local global, per_host, delay = tonumber(ARGV[4]), tonumber(ARGV[5]), tonumber(ARGV[6])
local state = redis.call('HGET', job, 'state')
if state ~= 'queued' and state ~= 'running' then
  return -1
end
redis.call('ZREMRANGEBYSCORE', job_slots, '-inf', now)
redis.call('ZREMRANGEBYSCORE', host_slots, '-inf', now)
if redis.call('ZCARD', job_slots) >= global or redis.call('ZCARD', host_slots) >= per_host then
  return 5
end
if delay > 0 then
  local next_at = tonumber(redis.call('GET', host_next) or '0')
  if now < next_at then
    return math.max(1, math.ceil((next_at - now) * 1000))
  end
  redis.call('SET', host_next, tostring(now + delay), 'PX', math.ceil(delay * 1000) + 1000)
end
redis.call('ZADD', job_slots, now + ttl, token)
redis.call('ZADD', host_slots, now + ttl, token)
redis.call('PEXPIRE', job_slots, math.ceil(ttl * 1000))
redis.call('PEXPIRE', host_slots, math.ceil(ttl * 1000))
return 0
