-- Admission into a crawl's frontier (shared by record.lua and seed.lua).
-- A URL is admitted once per job (the items set is the seen-set); a page only
-- within --max-depth and while fewer than --max-pages pages were admitted.
-- Pages wait in the frontier scored by depth; images are scored -1 (no barrier).
local function admit(job, items, urls, frontier, stats, id, url, depth, kind)
  if redis.call('SISMEMBER', items, id) == 1 then
    return 0
  end
  if kind == 'p' then
    local max_depth = tonumber(redis.call('HGET', job, 'max_depth') or '-1')
    if max_depth >= 0 and depth > max_depth then
      redis.call('HINCRBY', stats, 'beyond_depth', 1)
      return 0
    end
    local max_pages = tonumber(redis.call('HGET', job, 'max_pages') or '-1')
    local admitted = tonumber(redis.call('HGET', job, 'pages_admitted') or '0')
    if max_pages >= 0 and admitted >= max_pages then
      redis.call('HINCRBY', stats, 'capped', 1)
      return 0
    end
    redis.call('HINCRBY', job, 'pages_admitted', 1)
    redis.call('ZADD', frontier, depth, id)
  else
    redis.call('ZADD', frontier, -1, id)
  end
  redis.call('SADD', items, id)
  redis.call('HSET', urls, id, cjson.encode({url, depth, kind}))
  return 1
end
