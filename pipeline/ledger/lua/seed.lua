-- Admit a crawl's seeds at depth 0, then seal the job (total = admitted so far).
-- KEYS: job, items, urls, frontier, stats        ARGV: now, (id, url)...
local job, items, urls, frontier, stats = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5]
local crawl = crawl_limits({job = job, items = items, urls = urls, frontier = frontier, stats = stats})
local added = 0
for i = 2, #ARGV, 2 do
  added = added + admit(crawl, ARGV[i], ARGV[i + 1], 0, 'p')
end
redis.call('HSET', job, 'total', redis.call('SCARD', items), 'submitted', redis.call('SCARD', items))
return added
