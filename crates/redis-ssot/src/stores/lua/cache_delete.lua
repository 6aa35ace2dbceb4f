-- Deletes cache entries and their index records.
-- KEYS: index, entries...; ARGV: the entries' names, in the same order.
local n = 0
for i = 2, #KEYS do
  n = n + redis.call('DEL', KEYS[i])
  redis.call('ZREM', KEYS[1], ARGV[i - 1])
end
return n
