-- Take failed items of a finished job back out of the aggregate and into its
-- frontier, so they are sent again like any other item (leased: a send that is
-- interrupted is re-sent by the ticker): each listed id that is currently a
-- failure loses its result and every counter it moved; the job is running and
-- active again and its keys lose their retention. Ids that are not (or no
-- longer) failures are left alone, so two concurrent retries cannot take an
-- item twice. A job whose reduce step has not yet written its report is refused:
-- that step would otherwise finish the job again under the retry.
-- KEYS: job, done, stats, frontier, active set, then every key of the job (to PERSIST)
-- ARGV: job id, now, item id...
-- The time the job stood finished is added to its `idle_s`, which its elapsed time leaves out.
-- Returns how many items were taken.
local job, done, stats, frontier, active = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5]
local state = redis.call('HGET', job, 'state')
if state ~= 'succeeded' and state ~= 'failed' then
  return redis.error_reply('job is ' .. tostring(state) .. '; only a finished job can be retried')
end
if not redis.call('HGET', job, 'finalized_at') then
  return redis.error_reply('its report is still being written; try again in a moment')
end

local function present(v)
  return v ~= nil and v ~= cjson.null and v ~= ''
end

local function decrement(field, by)
  if redis.call('HINCRBYFLOAT', stats, field, -by) + 0 <= 0 then
    redis.call('HDEL', stats, field)
  end
end

local taken = 0
for i = 3, #ARGV do
  local raw = redis.call('HGET', done, ARGV[i])
  if raw then
    local r = cjson.decode(raw)
    if not r.ok then
      redis.call('HDEL', done, r.id)
      redis.call('HINCRBY', stats, 'failed', -1)
      if present(r.kind) then decrement('failed:' .. r.kind, 1) end
      local reason = 'error'
      if present(r.reason) then reason = r.reason end
      decrement('fail:' .. reason, 1)
      for _, field in ipairs({'bytes_in', 'bytes_out'}) do
        local n = tonumber(r[field]) or 0
        if n ~= 0 then redis.call('HINCRBY', stats, field, -n) end
      end
      if type(r.timings) == 'table' then
        for stage, seconds in pairs(r.timings) do
          redis.call('HINCRBYFLOAT', stats, 't:' .. stage, -(tonumber(seconds) or 0))
        end
      end
      redis.call('ZADD', frontier, -1, r.id)
      taken = taken + 1
    end
  end
end
if taken > 0 then
  local finished_at = tonumber(redis.call('HGET', job, 'finished_at') or ARGV[2])
  redis.call('HINCRBYFLOAT', job, 'idle_s', math.max(0, tonumber(ARGV[2]) - finished_at))
  redis.call('HSET', job, 'state', 'running')
  redis.call('HDEL', job, 'finished_at', 'reason', 'report', 'finalized_at')
  redis.call('SADD', active, ARGV[1])
  for k = 6, #KEYS do
    redis.call('PERSIST', KEYS[k])
  end
end
return taken
