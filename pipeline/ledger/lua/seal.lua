-- The producer has enqueued everything: write the total, and finish at once
-- if the workers were faster than the producer (or there was nothing to do).
-- KEYS: job, items, stats        ARGV: now
-- Returns 1 if this call finished the job.
local job, items, stats = KEYS[1], KEYS[2], KEYS[3]
redis.call('HSET', job, 'total', redis.call('SCARD', items))
return maybe_finish(job, stats, ARGV[1])
