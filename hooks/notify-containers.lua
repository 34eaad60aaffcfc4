-- notify-containers.lua: tell a webhook (Slack incoming webhook,
-- Mattermost, or any HTTP endpoint taking JSON) when a hosting user's
-- container is OOM-killed or caught in a restart loop.
--
-- Needs the container source (containers: { enabled: true } in
-- ophookd.yaml).  Install: copy to hooks_dir (/etc/openpanel/ophookd/hooks),
-- owned by root, mode 0644, and set WEBHOOK_URL below.  See ophook-lua(7)
-- and the CONTAINERS section of ophookd(8).

local WEBHOOK_URL = "https://hooks.slack.com/services/CHANGE/ME"

-- Container names repeat for every user (nginx, mysql, ...): always say
-- whose it is.  Names and labels were checked by ophookd, but they are
-- the user's own words: they go into the text as data, never anywhere
-- they would be run.
local function whose(ev)
	if ev.system then
		return "system"
	end
	local who = ev.user or ev.ctx or ("uid " .. tostring(ev.uid))
	if ev.suspended then
		who = who .. " (suspended)"
	end
	return who
end

local function describe(ev)
	local svc = ev.service and (" (service " .. ev.service .. ")") or ""
	if ev.type == "container.oom" then
		return string.format("container %s%s of %s was killed: out of memory",
			ev.container, svc, whose(ev))
	end
	return string.format("container %s%s of %s is restarting in a loop: "
		.. "%d deaths in %d s, last exit code %s",
		ev.container, svc, whose(ev), ev.deaths or 0, ev.window_s or 0,
		tostring(ev.exit_code or "?"))
end

local function notify(ev)
	local body = ophook.json.encode({
		text = string.format("[%s] %s", ev.node or "?", describe(ev)),
	})
	local status, resp = ophook.http.post(WEBHOOK_URL, body,
		{ timeout = 3000 })
	if not status then
		ophook.log.warn("webhook unreachable:", resp)
		return ophook.retry, resp
	end
	if status >= 500 or status == 429 then
		return ophook.retry, "webhook answered " .. status
	end
	if status >= 300 then
		ophook.log.error("webhook refused the event:", status, resp)
	end
end

ophook.on("container.oom", { timeout = 5000 }, notify)
ophook.on("container.restart_loop", { timeout = 5000 }, notify)
