-- bench/scale/lookup.lua (wrk -s): GET /_matrix/federation/v1/event/{id}
-- with an ID drawn at random, per request, from the file $SCALE_IDS (one
-- event ID a line: a random sample across the whole store).
local ids = {}
for l in io.lines(os.getenv("SCALE_IDS")) do
	ids[#ids + 1] = (l:gsub("%$", "%%24"))
end
math.randomseed(os.time() + tonumber(tostring({}):sub(8), 16) % 100000)
request = function()
	return wrk.format("GET", "/_matrix/federation/v1/event/" .. ids[math.random(#ids)])
end
