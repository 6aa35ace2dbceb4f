-- Revokes sessions. KEYS: the user's session set, session hashes...;
-- ARGV: their ids, in the same order.
local n = 0
for i = 2, #KEYS do
  n = n + redis.call('DEL', KEYS[i])
  redis.call('SREM', KEYS[1], ARGV[i - 1])
end
return n
