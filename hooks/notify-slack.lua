-- notify-slack.lua: post every domain and user change to a webhook
-- (Slack incoming webhook, Mattermost, or any HTTP endpoint taking JSON).
--
-- Install: copy to hooks_dir (/etc/openpanel/ophookd/hooks), owned by root,
-- mode 0644, and set WEBHOOK_URL below.  See ophook-lua(7).

local WEBHOOK_URL = "https://hooks.slack.com/services/CHANGE/ME"
-- When true, post the raw event JSON instead of a Slack message.
local RAW = false

local function post(ev)
	local body
	if RAW then
		body = ophook.json.encode(ev)
	else
		local who = ev.user and (" (user " .. ev.user .. ")") or ""
		body = ophook.json.encode({
			text = string.format("[%s] %s: %s%s", ev.node or "?",
				ev.type, ev.subject, who),
		})
	end
	local status, resp = ophook.http.post(WEBHOOK_URL, body,
		{ timeout = 3000 })
	if not status then
		-- network trouble: ask the journal to try again later
		ophook.log.warn("webhook unreachable:", resp)
		return ophook.retry, resp
	end
	if status >= 500 or status == 429 then
		return ophook.retry, "webhook answered " .. status
	end
	if status >= 300 then
		-- a 4xx will not get better by retrying
		ophook.log.error("webhook refused the event:", status, resp)
	end
end

ophook.on("domain.*", { timeout = 5000 }, post)
ophook.on("user.*", { timeout = 5000 }, post)
