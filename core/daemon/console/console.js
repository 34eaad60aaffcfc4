/* ophook console: plain DOM, no framework.  Every value from the daemon
 * is shown with textContent (event fields are customer-chosen and
 * hostile): nothing here builds HTML from data.  Data comes from
 * api/ctl (the control commands ophookctl runs), live events from
 * api/tail (Server-Sent Events). */
'use strict';

(function () {
	var csrf = null;
	var app = document.getElementById('app');
	var source = null;        /* the live EventSource, on the events page */
	var PAGE = 100;

	/* ---- DOM helpers ---- */

	/* el('td', {class: 'x'}, 'text', child...): strings become text */
	function el(tag, attrs) {
		var e = document.createElement(tag);
		var k;
		if (attrs) {
			for (k in attrs) {
				if (!Object.prototype.hasOwnProperty.call(attrs, k) ||
				    attrs[k] === null || attrs[k] === undefined)
					continue;
				if (k === 'class')
					e.className = attrs[k];
				else if (k === 'onclick' || k === 'onsubmit' || k === 'onchange')
					e.addEventListener(k.slice(2), attrs[k]);
				else
					e.setAttribute(k, String(attrs[k]));
			}
		}
		for (var i = 2; i < arguments.length; i++)
			add(e, arguments[i]);
		return e;
	}
	function add(parent, c) {
		if (c === null || c === undefined || c === false)
			return;
		if (Array.isArray(c)) {
			c.forEach(function (x) { add(parent, x); });
			return;
		}
		if (typeof c === 'object' && c.nodeType)
			parent.appendChild(c);
		else
			parent.appendChild(document.createTextNode(String(c)));
	}
	function clear(e) {
		while (e.firstChild)
			e.removeChild(e.firstChild);
	}
	function show() {
		clear(app);
		for (var i = 0; i < arguments.length; i++)
			add(app, arguments[i]);
	}
	function flash(msg, bad) {
		var f = document.getElementById('flash');
		clear(f);
		f.className = bad ? 'bad' : 'good';
		f.textContent = msg;
	}
	function table(headers, rows, cls) {
		return el('table', { class: cls || null },
			el('thead', null, el('tr', null, headers.map(function (h) {
				return el('th', null, h);
			}))),
			el('tbody', null, rows));
	}
	function td(v, cls) { return el('td', { class: cls || null }, v); }
	function timeText(ms) {
		if (!ms)
			return '-';
		return new Date(ms).toISOString().replace('T', ' ').replace('Z', '');
	}
	function firstLine(s) {
		return s ? String(s).split('\n')[0] : '';
	}
	function stateBadge(s) {
		return el('span', { class: 'state state-' + s }, s);
	}

	/* ---- the control commands ---- */

	function get(cmd, args) {
		var q = 'api/ctl?cmd=' + encodeURIComponent(cmd);
		(args || []).forEach(function (a) {
			q += '&arg=' + encodeURIComponent(a);
		});
		return fetch(q, { credentials: 'same-origin' }).then(answer);
	}
	function post(cmd, args) {
		return fetch('api/ctl', {
			method: 'POST',
			credentials: 'same-origin',
			headers: { 'Content-Type': 'application/json',
				   'X-CSRF-Token': csrf },
			body: JSON.stringify({ cmd: cmd, args: args })
		}).then(answer);
	}
	function answer(r) {
		if (r.status === 401) {
			location.href = 'login';
			throw new Error('not logged in');
		}
		return r.json().then(function (j) {
			if (!j.ok)
				throw new Error(j.error || ('HTTP ' + r.status));
			return j;
		});
	}
	function failed(e) {
		flash(e.message, true);
	}

	/* ---- overview ---- */

	function overview() {
		Promise.all([get('status'), get('cluster', ['status']).catch(function () {
			return { result: [] };
		})]).then(function (rs) {
			var st = rs[0].result, nodes = rs[1].result || [];
			var j = st.journal || {}, d = j.deliveries || {};
			var counts = j.handlers || {};
			var hrows = (st.handlers || []).map(function (h) {
				var c = counts[h.name] || {};
				return el('tr', null, td(h.name), td((h.patterns || []).join(' ') || '*'),
					td(h.inflight), td((c.pending || 0) + (h.queued || 0)),
					td(c.failed || 0, c.failed ? 'warn' : null),
					td(c.dead || 0, c.dead ? 'bad' : null),
					td(((h.lag_ms || 0) / 1000).toFixed(1) + ' s' +
						(h.behind ? ' (behind)' : ''),
						(h.lag_ms || 0) > 60000 ? 'warn' : null));
			});
			var plugins = (st.plugins || []).map(function (p) {
				return el('tr', null, td(p.name), td(p.state, p.state === 'running' ? null : 'bad'),
					td(p.isolation), td(p.crashes));
			});
			var errs = (st.handlers_in_error || []).map(function (h) {
				return el('tr', null, td(h.name), td(h.state, 'bad'), td(firstLine(h.error)));
			});
			var al = st.alerts;
			var arows = al ? (al.open || []).map(function (a) {
				return el('tr', null, td(a.alert,
					/expired|overdue|failed/.test(a.alert) ? 'bad' : 'warn'),
					td(a.subject), td(a.detail));
			}) : [];
			var nrows = nodes.map(function (n) {
				return el('tr', null, td(n.name), td(timeText(n.heartbeat_ms)),
					td(n.alive ? 'alive' : 'dead', n.alive ? null : 'bad'),
					td(n.lag), td(n.failed), td(n.dead, n.dead ? 'bad' : null));
			});
			show(el('h1', null, 'Overview'),
				el('section', { class: 'cards' },
					card('Queue', st.incoming + ' incoming, ' + st.queued + ' queued, ' +
						st.inflight + ' in flight'),
					card('Journal', (st.journal_ok ? 'ok' : 'ERROR') + ', ' + (j.events || 0) +
						' events, last id ' + (j.last_id || 0)),
					card('Deliveries', ['pending', 'done', 'failed', 'dead', 'discarded']
						.map(function (k) { return k + ' ' + (d[k] || 0); }).join(', ')),
					card('Daemon', 'ophookd ' + st.version + ' on ' + st.node + ', up ' +
						st.uptime_s + ' s')),
				el('h2', null, 'Open alerts'),
				!al ? el('p', { class: 'muted' }, 'alerts are off (alerts.enabled)')
					: arows.length ? table(['Alert', 'Subject', 'Detail'], arows, 'alerts')
					: el('p', { class: 'muted' }, 'none'),
				el('h2', null, 'Handlers'),
				table(['Handler', 'Patterns', 'In flight', 'Backlog', 'Failed', 'Dead', 'Lag'],
					hrows, 'handlers'),
				el('h2', null, 'Hooks and handlers in error'),
				errs.length ? table(['Handler', 'State', 'Error'], errs, 'errors')
					: el('p', { class: 'muted' }, 'none'),
				el('h2', null, 'Plugins'),
				plugins.length ? table(['Plugin', 'State', 'Isolation', 'Crashes'], plugins)
					: el('p', { class: 'muted' }, 'none'),
				el('h2', null, 'Cluster nodes'),
				nrows.length ? table(['Node', 'Heartbeat', 'State', 'Lag', 'Failed', 'Dead'], nrows)
					: el('p', { class: 'muted' }, 'single node (SQLite journal)'));
		}).catch(failed);
	}
	function card(title, text) {
		return el('div', { class: 'card' }, el('h3', null, title), el('p', null, text));
	}

	/* ---- events ---- */

	var FILTERS = ['type', 'subject', 'user', 'state', 'since', 'until'];

	function eventArgs(f) {
		var args = ['--limit', String(PAGE)];
		FILTERS.forEach(function (k) {
			if (f[k])
				args.push('--' + k, f[k]);
		});
		if (f.before)
			args.push('--before', f.before);
		return args;
	}
	function summary(ev) {
		var n = {};
		(ev.deliveries || []).forEach(function (d) {
			n[d.state] = (n[d.state] || 0) + 1;
		});
		return Object.keys(n).map(function (k) {
			return el('span', { class: 'state state-' + k }, n[k] + ' ' + k);
		});
	}
	function eventRow(ev) {
		return el('tr', { 'data-id': ev.id, class: 'ev' },
			td(el('a', { href: '#/event/' + ev.id }, String(ev.id))),
			td(timeText(ev.time_ms)), td(ev.type, 'type'), td(ev.subject, 'subject'),
			td((ev.payload && ev.payload.user) || ''), td(summary(ev), 'states'));
	}
	/* does a live event pass the filters (the ones we can check here)? */
	function matches(f, ev) {
		if (f.type) {
			/* as the journal's glob: '*' any run, everything else literal */
			var re = new RegExp('^' + f.type.replace(/[.+?^${}()|[\]\\]/g, '\\$&')
				.replace(/\*/g, '.*') + '$');
			if (!re.test(ev.type))
				return false;
		}
		if (f.subject && ev.subject !== f.subject)
			return false;
		if (f.user && ev.user !== f.user)
			return false;
		return !f.state && !f.before && !f.until;
	}
	function events(params) {
		var f = {};
		FILTERS.concat(['before']).forEach(function (k) {
			f[k] = params.get(k) || '';
		});
		var inputs = {};
		var form = el('form', { class: 'filters', id: 'filters', onsubmit: function (e) {
			e.preventDefault();
			var q = new URLSearchParams();
			FILTERS.forEach(function (k) {
				if (inputs[k].value)
					q.set(k, inputs[k].value);
			});
			location.hash = '#/events?' + q.toString();
		} }, FILTERS.map(function (k) {
			var input;
			if (k === 'state') {
				input = el('select', { name: k, id: 'f-' + k },
					['', 'pending', 'done', 'failed', 'dead', 'discarded'].map(function (s) {
						var o = el('option', { value: s }, s || 'any state');
						if (s === f.state)
							o.selected = true;
						return o;
					}));
			} else {
				input = el('input', { name: k, id: 'f-' + k, value: f[k],
					placeholder: k === 'since' || k === 'until'
						? '2026-01-02T03:04 or 2h' : k === 'type' ? 'domain.*' : '' });
			}
			inputs[k] = input;
			return el('label', null, k, input);
		}), el('button', { type: 'submit' }, 'Filter'));
		var tbody = el('tbody', { id: 'events' });
		var more = el('p', { class: 'pager' });
		show(el('h1', null, 'Events'), form,
			el('table', { class: 'events' },
				el('thead', null, el('tr', null, ['ID', 'Time', 'Type', 'Subject', 'User', 'Deliveries']
					.map(function (h) { return el('th', null, h); }))),
				tbody), more);
		get('events', eventArgs(f)).then(function (r) {
			var rows = r.result.slice().reverse(); /* newest first */
			rows.forEach(function (ev) { tbody.appendChild(eventRow(ev)); });
			if (!rows.length)
				tbody.appendChild(el('tr', null, el('td', { colspan: 6, class: 'muted' }, 'no events')));
			if (rows.length === PAGE) {
				var q = new URLSearchParams(params.toString());
				q.set('before', String(rows[rows.length - 1].id));
				add(more, el('a', { href: '#/events?' + q.toString(), id: 'older' }, 'Older events →'));
			}
			if (f.before)
				return;
			var last = rows.length ? rows[0].id : 0;
			live(f, last, tbody);
		}).catch(failed);
	}
	/* follow api/tail after event `last`: new events go on top */
	function live(f, last, tbody) {
		var q = 'api/tail?after=' + encodeURIComponent(String(last));
		var badge = document.getElementById('live');
		source = new EventSource(q);
		source.onopen = function () {
			badge.textContent = 'live';
			badge.className = 'live on';
		};
		source.onerror = function () {
			badge.textContent = 'reconnecting';
			badge.className = 'live off';
		};
		source.addEventListener('failure', function (m) {
			flash(JSON.parse(m.data).error, true);
			source.close();
		});
		source.onmessage = function (m) {
			var ev = JSON.parse(m.data);
			if (!matches(f, ev) || tbody.querySelector('tr[data-id="' + Number(ev.id) + '"]'))
				return;
			var empty = tbody.querySelector('td.muted');
			if (empty)
				tbody.removeChild(empty.parentNode);
			/* the tail payload has no deliveries yet */
			var row = eventRow({ id: ev.id, time_ms: Date.parse(ev.time), type: ev.type,
				subject: ev.subject, payload: ev, deliveries: [] });
			row.classList.add('new');
			tbody.insertBefore(row, tbody.firstChild);
			while (tbody.children.length > PAGE * 2)
				tbody.removeChild(tbody.lastChild);
		};
	}

	/* ---- one event ---- */

	function eventPage(id) {
		get('events', [String(id)]).then(function (r) {
			var ev = r.result;
			var fields = Object.keys(ev.payload || {}).sort().map(function (k) {
				var v = ev.payload[k];
				return el('tr', null, td(k, 'key'),
					td(typeof v === 'string' ? v : JSON.stringify(v), 'val'));
			});
			var dels = (ev.deliveries || []).map(function (d) {
				var actions = [];
				if (d.state === 'dead' || d.state === 'failed')
					actions.push(el('button', { class: 'retry', 'data-handler': d.handler,
						onclick: function () { act('retry', [String(ev.id), '--handler', d.handler], function () { eventPage(id); }); } }, 'Retry'));
				if (d.state === 'dead')
					actions.push(el('button', { class: 'discard', 'data-handler': d.handler,
						onclick: function () { act('discard', [String(ev.id), '--handler', d.handler], function () { eventPage(id); }); } }, 'Discard'));
				var attempts = (d.attempts_log || []).map(function (a) {
					return el('tr', null, td(a.attempt), td(timeText(a.started_ms)),
						td((a.duration_us / 1000).toFixed(1) + ' ms'),
						td(el('pre', null, a.error || 'ok'), a.error ? 'bad' : null));
				});
				return el('section', { class: 'delivery', 'data-handler': d.handler,
					'data-state': d.state },
					el('h3', null, d.handler, ' ', stateBadge(d.state),
						d.live ? el('span', { class: 'muted' }, ' (' + d.live + ')') : null,
						' ', actions),
					attempts.length ? table(['Attempt', 'Started', 'Duration', 'Result'], attempts, 'attempts')
						: el('p', { class: 'muted' }, d.attempts + ' attempts, no history kept'));
			});
			show(el('h1', null, 'Event ' + ev.id + ': ', el('span', { class: 'type' }, ev.type), ' ',
				el('span', { class: 'subject', id: 'ev-subject' }, ev.subject)),
				el('p', null, timeText(ev.time_ms) + ' from ' + ev.source + ' on ' + ev.node),
				el('h2', null, 'Payload'), table(['Field', 'Value'], fields, 'payload'),
				el('h2', null, 'Deliveries'), dels.length ? dels : el('p', { class: 'muted' }, 'no handler matched'));
		}).catch(failed);
	}
	function act(cmd, args, then) {
		post(cmd, args).then(function (r) {
			flash(r.text ? r.text.trim() : cmd + ': done', false);
			if (then)
				setTimeout(then, 300);
		}).catch(failed);
	}

	/* ---- dead letters ---- */

	function dead() {
		get('events', ['--state', 'dead', '--limit', '1000']).then(function (r) {
			var groups = {};
			r.result.forEach(function (ev) {
				(ev.deliveries || []).forEach(function (d) {
					if (d.state !== 'dead')
						return;
					var key = d.handler + '\n' + firstLine(d.last_error);
					if (!groups[key])
						groups[key] = { handler: d.handler, error: firstLine(d.last_error), events: [] };
					groups[key].events.push(ev);
				});
			});
			var keys = Object.keys(groups).sort();
			var sections = keys.map(function (key) {
				var g = groups[key];
				var rows = g.events.map(function (ev) {
					return el('tr', { 'data-id': ev.id },
						td(el('input', { type: 'checkbox', class: 'pick', value: ev.id })),
						td(el('a', { href: '#/event/' + ev.id }, String(ev.id))),
						td(timeText(ev.time_ms)), td(ev.type), td(ev.subject),
						td([el('button', { class: 'retry-one', onclick: function () {
							act('retry', [String(ev.id), '--handler', g.handler], dead);
						} }, 'Retry'), ' ',
						el('button', { class: 'discard-one', onclick: function () {
							act('discard', [String(ev.id), '--handler', g.handler], dead);
						} }, 'Discard')]));
				});
				var sec = el('section', { class: 'group', 'data-handler': g.handler });
				function picked() {
					return Array.prototype.map.call(sec.querySelectorAll('input.pick:checked'),
						function (c) { return c.value; });
				}
				function each(cmd) {
					var ids = picked();
					Promise.all(ids.map(function (id) {
						return post(cmd, [id, '--handler', g.handler]);
					})).then(function () {
						flash(cmd + ': ' + ids.length + ' deliveries', false);
						setTimeout(dead, 300);
					}).catch(failed);
				}
				add(sec, [el('h2', null, g.handler, ' ', el('span', { class: 'count' }, g.events.length + ' dead')),
					el('pre', { class: 'error' }, g.error || '(no error recorded)'),
					el('p', { class: 'actions' },
						el('button', { onclick: function () { each('retry'); } }, 'Retry selected'), ' ',
						el('button', { onclick: function () { each('discard'); } }, 'Discard selected'), ' ',
						el('button', { class: 'retry-all', onclick: function () {
							act('retry', ['--handler', g.handler], dead);
						} }, 'Retry all of ' + g.handler), ' ',
						el('button', { class: 'discard-all', onclick: function () {
							if (confirm('Discard every dead delivery of ' + g.handler + '?'))
								act('discard', ['--handler', g.handler, '--dead'], dead);
						} }, 'Discard all of ' + g.handler)),
					table(['', 'ID', 'Time', 'Type', 'Subject', ''], rows, 'dead')]);
				return sec;
			});
			show(el('h1', null, 'Dead letters'),
				sections.length ? sections : el('p', { class: 'muted', id: 'no-dead' }, 'no dead deliveries'));
		}).catch(failed);
	}

	/* ---- hooks and plugins ---- */

	function hooks() {
		Promise.all([get('hooks', ['list']).catch(function (e) { return { result: { hooks: [] }, error: e }; }),
			get('hooks', ['lint']).catch(function (e) { return { text: e.message }; }),
			get('plugins', ['list'])]).then(function (rs) {
			var hs = (rs[0].result && rs[0].result.hooks) || [];
			var hrows = hs.map(function (h) {
				var off = h.state === 'disabled';
				return el('tr', { 'data-hook': h.file, 'data-state': h.state }, td(h.file), td(h.kind),
					td(h.state, h.state === 'loaded' || h.state === 'ok' ? null : off ? 'warn' : 'bad'),
					td((h.patterns || []).concat((h.intents || []).map(function (i) { return 'pre:' + i; }))
						.concat(h.pattern ? [h.pattern] : []).join(' ')),
					td(firstLine(h.last_error)),
					td(el('button', { class: off ? 'enable' : 'disable', onclick: function () {
						/* the hooks scan picks the rename up within a second or two */
						act('hooks', [off ? 'enable' : 'disable', h.file], function () {
							setTimeout(hooks, 2000);
						});
					} }, off ? 'Enable' : 'Disable')));
			});
			/* a disabled plugin leaves `plugins list`: remember the
			 * ones disabled here, to offer enabling them again */
			var off = disabledHere();
			var list = (rs[2].result || []).slice();
			list.forEach(function (p) { delete off[p.name]; });
			Object.keys(off).sort().forEach(function (n) {
				list.push({ name: n, state: 'disabled', isolation: '-', crashes: '-',
					description: 'disabled from this console' });
			});
			saveDisabled(off);
			var prows = list.map(function (p) {
				var on = p.state !== 'disabled';
				return el('tr', { 'data-plugin': p.name }, td(p.name), td(p.state, p.state === 'running' ? null : 'warn'),
					td(p.isolation), td(p.crashes), td(p.description || ''),
					td(el('button', { class: on ? 'disable' : 'enable', onclick: function () {
						act('plugins', [on ? 'disable' : 'enable', p.name], function () {
							var d = disabledHere();
							if (on)
								d[p.name] = true;
							else
								delete d[p.name];
							saveDisabled(d);
							hooks();
						});
					} }, on ? 'Disable' : 'Enable')));
			});
			show(el('h1', null, 'Hooks and plugins'),
				el('h2', null, 'Hooks'),
				hrows.length ? table(['File', 'Kind', 'State', 'Patterns', 'Last error', ''], hrows, 'hooks')
					: el('p', { class: 'muted' }, 'no hooks'),
				el('h2', null, 'Lint'), el('pre', { class: 'lint', id: 'lint' }, rs[1].text || ''),
				el('h2', null, 'Plugins'),
				prows.length ? table(['Plugin', 'State', 'Isolation', 'Crashes', 'Description', ''], prows, 'plugins')
					: el('p', { class: 'muted' }, 'no plugins'));
		}).catch(failed);
	}

	function disabledHere() {
		try {
			return JSON.parse(sessionStorage.getItem('ophook.disabled') || '{}') || {};
		} catch (e) {
			return {};
		}
	}
	function saveDisabled(d) {
		sessionStorage.setItem('ophook.disabled', JSON.stringify(d));
	}

	/* ---- routing ---- */

	function route() {
		if (source) {
			source.close();
			source = null;
			var b = document.getElementById('live');
			b.textContent = 'offline';
			b.className = 'live off';
		}
		var h = location.hash.replace(/^#\/?/, '');
		var qi = h.indexOf('?');
		var path = qi >= 0 ? h.slice(0, qi) : h;
		var params = new URLSearchParams(qi >= 0 ? h.slice(qi + 1) : '');
		var page = path.split('/')[0] || 'overview';
		Array.prototype.forEach.call(document.querySelectorAll('nav a'), function (a) {
			a.className = a.id === 'nav-' + page ? 'active' : '';
		});
		if (page === 'events')
			events(params);
		else if (page === 'event')
			eventPage(parseInt(path.split('/')[1], 10));
		else if (page === 'dead')
			dead();
		else if (page === 'hooks')
			hooks();
		else
			overview();
	}

	document.getElementById('logout').addEventListener('click', function () {
		fetch('logout', { method: 'POST', credentials: 'same-origin',
			headers: { 'X-CSRF-Token': csrf } }).then(function () {
			location.href = 'login';
		});
	});
	fetch('api/session', { credentials: 'same-origin' }).then(function (r) {
		if (r.status === 401) {
			location.href = 'login';
			throw new Error('not logged in');
		}
		return r.json();
	}).then(function (s) {
		csrf = s.csrf;
		window.addEventListener('hashchange', route);
		route();
	}).catch(failed);
}());
