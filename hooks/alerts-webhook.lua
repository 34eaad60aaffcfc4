-- alerts-webhook.lua: send ophook's derived alerts (certificates about to
-- expire or expired, disk quota levels, failed backups) to a webhook
-- (Slack or Mattermost incoming webhook, or any HTTP endpoint taking
-- JSON), with the open/resolved state of each, so that the receiving end
-- can open and close a ticket or an incident.
--
-- Needs alerts: { enabled: true } in ophookd.yaml (see ophookd.yaml(5),
-- ALERTS).  Install: copy to hooks_dir (/etc/openpanel/ophookd/hooks),
-- owned by root, mode 0644, and set WEBHOOK_URL below.  ophookd sends each
-- alert once (not again while it is open, nor after a restart), so this
-- hook does not have to remember anything.

local WEBHOOK_URL = "https://hooks.slack.com/services/CHANGE/ME"

-- type -> state ("open" or "resolved") and the words for it
local STATE = {
	["cert.expiring"] = "open",
	["cert.expired"] = "open",
	["cert.expiry_resolved"] = "resolved",
	["cert.renewal_overdue"] = "open",
	["cert.renewal_resolved"] = "resolved",
	["quota.exceeded"] = "open",
	["quota.recovered"] = "resolved",
	["backup.failed"] = "open",
	["backup.succeeded"] = "resolved",
}

local function describe(ev)
	local t = ev.type
	if t == "cert.expiring" then
		return string.format("certificate of %s expires in less than %s "
			.. "(not after %s)", ev.domain, ev.threshold, ev.not_after)
	elseif t == "cert.expired" then
		return string.format("certificate of %s EXPIRED at %s",
			ev.domain, ev.not_after)
	elseif t == "cert.expiry_resolved" then
		return string.format("certificate of %s: %s (%s; not after %s)",
			ev.domain, ev.was .. " over", ev.reason, ev.not_after)
	elseif t == "cert.renewal_overdue" then
		return string.format("certificate of %s is not renewed: Caddy "
			.. "should have renewed it by %s (not after %s)",
			ev.domain, ev.renew_due, ev.not_after)
	elseif t == "cert.renewal_resolved" then
		return string.format("certificate of %s: renewal alert over "
			.. "(%s; not after %s)", ev.domain, ev.reason, ev.not_after)
	elseif t == "quota.exceeded" then
		return string.format("user %s uses %.1f%% of the %s disk quota "
			.. "(level %d%%: %d of %d KiB)", ev.user, ev.percent,
			ev.limit, ev.level, ev.used_kb,
			ev.limit == "soft" and ev.soft_kb or ev.hard_kb)
	elseif t == "quota.recovered" and ev.reason == "unlisted" then
		return string.format("user %s has no disk quota any more "
			.. "(user or limits removed)", ev.user)
	elseif t == "quota.recovered" then
		return string.format("user %s is back under the disk quota "
			.. "levels (%.1f%%)", ev.user, ev.percent)
	elseif t == "backup.failed" then
		return string.format("backup of user %s FAILED (exit code %d)",
			ev.user, ev.exit_code)
	end
	return string.format("backup of user %s succeeded", ev.user)
end

local function send(ev)
	local state = STATE[ev.type]
	-- a success that closes nothing is good news nobody asked for
	if ev.type == "backup.succeeded" and not ev.resolved then
		return
	end
	local body = ophook.json.encode({
		text = string.format("[%s] %s: %s", ev.node ~= "" and ev.node
			or "ophook", state == "open" and "ALERT" or "resolved",
			describe(ev)),
		alert = {
			type = ev.type,
			state = state,
			subject = ev.subject,
			id = ev.id,
			time = ev.time,
		},
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
		ophook.log.error("webhook refused the alert:", status, resp)
	end
end

for t in pairs(STATE) do
	ophook.on(t, { timeout = 5000 }, send)
end
