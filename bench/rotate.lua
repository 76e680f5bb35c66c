-- wrk script: send a different valid token on each request, cycling
-- through the file named by TOKENS_FILE (one token per line).
local tokens = {}
for line in io.lines(os.getenv("TOKENS_FILE")) do
	tokens[#tokens + 1] = line
end
local i = 0
request = function()
	i = i % #tokens + 1
	return wrk.format("GET", "/", { ["Authorization"] = "Bearer " .. tokens[i] })
end
