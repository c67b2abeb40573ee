-- A worker has started on the job: queued -> running (once; any other state stays).
-- KEYS: job        ARGV: now
if redis.call('HGET', KEYS[1], 'state') == 'queued' then
  redis.call('HSET', KEYS[1], 'state', 'running', 'started_at', ARGV[1])
  return 1
end
return 0
