-- Frees the lock if still ours. KEYS: the lease. ARGV: `<token>:<holder>`.
if redis.call('GET', KEYS[1]) ~= ARGV[1] then
  return 0
end
redis.call('DEL', KEYS[1])
return 1
