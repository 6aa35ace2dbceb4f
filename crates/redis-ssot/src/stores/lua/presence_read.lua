-- One user's presence over every live gateway. KEYS[1] the sorted set of live gateways;
-- ARGV user, prefix of the gateways' hashes (same hash tag). A gateway whose report expired
-- (score in the past, server clock) is not counted, whether or not its hash is still there.
-- Returns {sockets, gateways with at least one of them}.
local live = redis.call('ZRANGEBYSCORE', KEYS[1], '(' .. now_ms(), '+inf')
local sockets, gateways = 0, 0
for _, gateway in ipairs(live) do
  local n = tonumber(redis.call('HGET', ARGV[2] .. gateway, ARGV[1]) or '0')
  if n > 0 then
    sockets = sockets + n
    gateways = gateways + 1
  end
end
return {sockets, gateways}
