-- Shared tail of record.lua and seal.lua: end the job exactly once.
-- A job is done when every expected item has a result and the producer has
-- sealed it (written `total`). Only the caller that flips the state gets 1.
local function maybe_finish(job, stats, now)
  local state = redis.call('HGET', job, 'state')
  local total = redis.call('HGET', job, 'total')
  if not total or (state ~= 'queued' and state ~= 'running') then
    return 0
  end
  local ok = tonumber(redis.call('HGET', stats, 'ok') or '0')
  local failed = tonumber(redis.call('HGET', stats, 'failed') or '0')
  if ok + failed < tonumber(total) then
    return 0
  end
  local final = 'succeeded'
  if ok == 0 and failed > 0 then
    final = 'failed'
    redis.call('HSET', job, 'reason', 'no item could be processed')
  end
  redis.call('HSET', job, 'state', final, 'finished_at', now)
  return 1
end
