-- deny-reserved-domains.lua: refuse to add domains that can never be real
-- customer domains (RFC 2606 / RFC 6761 names, the server's own names).
--
--   ophookctl check domain.add domain=shop.example   -> deny, exit 1
--   ophookctl check domain.add domain=shop.com       -> allow, exit 0
--
-- opencli's pre hooks can ask this through contrib/opencli-pre-hook.

local RESERVED_SUFFIXES = {
	"example", "example.com", "example.net", "example.org",
	"test", "invalid", "localhost", "local",
}
-- names that belong to the hosting company itself
local OWN = {
	-- ["panel.myhosting.com"] = true,
}

local function reserved(domain)
	domain = domain:lower()
	if OWN[domain] then
		return "belongs to the hosting company"
	end
	for _, s in ipairs(RESERVED_SUFFIXES) do
		if domain == s or domain:sub(-(#s + 1)) == "." .. s then
			return "reserved name (." .. s .. ")"
		end
	end
	return nil
end

ophook.pre("domain.add", function(req)
	if not req.domain then
		return ophook.deny("domain.add without domain=")
	end
	local why = reserved(req.domain)
	if why then
		return ophook.deny(req.domain .. ": " .. why)
	end
end)
