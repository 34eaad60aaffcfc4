// Drive ophookd's web console in headless Chromium (tests/integration/console.sh).
// Prints TAP-like lines "ok - NAME" / "not ok - NAME" (the shell counts them)
// and "# ..." diagnostics; saves a screenshot of each page into SHOTS.
// Environment: BASE (http://127.0.0.1:PORT), TOKEN, SHOTS, SCENARIO (a shell
// command making the demo scenario's events), DEAD_A and DEAD_B (events with
// a dead lua:fail.lua delivery), HOSTILE (an event with a hostile subject),
// CHROMIUM (the browser), PROFILE (a fresh user data folder).
'use strict';
const { chromium } = require('playwright-core');
const { spawn } = require('child_process');

const env = process.env;
const BASE = env.BASE;
const T = 15000;
let failures = 0;

function ok(cond, name, why) {
	if (cond) {
		console.log('ok - ' + name);
	} else {
		failures++;
		console.log('not ok - ' + name + (why ? ' (' + why + ')' : ''));
	}
}

async function attempt(name, fn) {
	try {
		ok(await fn(), name);
	} catch (e) {
		ok(false, name, String(e.message).split('\n')[0]);
	}
}

function runScenario() {
	return new Promise((resolve) => {
		const p = spawn('sh', ['-c', env.SCENARIO], { stdio: ['ignore', 'ignore', 'inherit'] });
		p.on('exit', (code) => resolve(code));
	});
}

(async () => {
	const browser = await chromium.launchPersistentContext(env.PROFILE, {
		executablePath: env.CHROMIUM,
		headless: true,
		args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
			'--disable-background-networking', '--disable-component-update',
			'--disable-sync'],
		viewport: { width: 1280, height: 800 },
	});
	const page = browser.pages()[0] || await browser.newPage();
	const errors = [];
	page.on('pageerror', (e) => errors.push(e.message));
	page.on('dialog', (d) => d.accept());
	let external = 0;
	page.on('request', (r) => { if (!r.url().startsWith(BASE)) external++; });
	const shot = (name) => page.screenshot({ path: env.SHOTS + '/' + name + '.png', fullPage: true });

	try {
		// log in
		await page.goto(BASE + '/');
		ok(page.url() === BASE + '/login', 'without a session / leads to the login form', page.url());
		await shot('login');
		await page.fill('#token', 'not-the-token-at-all');
		await page.click('button[type=submit]');
		await page.waitForLoadState();
		ok(page.url() === BASE + '/login' && await page.$('#token') !== null,
			'a wrong token stays on the login form');
		await page.fill('#token', env.TOKEN);
		await Promise.all([page.waitForNavigation(), page.click('button[type=submit]')]);
		ok(page.url() === BASE + '/', 'the token logs in', page.url());
		const cookies = await browser.cookies();
		const c = cookies.find((k) => k.name === 'ophook_console');
		ok(c && c.httpOnly && c.sameSite === 'Strict', 'the session cookie is HttpOnly and SameSite=Strict');

		// overview
		await attempt('overview: handlers with their dead counts', async () => {
			await page.waitForSelector('table.handlers td', { timeout: T });
			const text = await page.textContent('table.handlers');
			return text.includes('lua:fail.lua') && text.includes('plugin:log');
		});
		await attempt('overview: the hook in error', async () =>
			(await page.textContent('table.errors')).includes('broken.lua'));
		await attempt('overview: the open alerts', async () => {
			const text = await page.textContent('table.alerts');
			return text.includes('cert.expiring') && text.includes('shop.example');
		});
		await shot('overview');

		// events, live
		await page.goto(BASE + '/#/events');
		await attempt('events: the live stream connects', async () => {
			/* (no waitForFunction: the page's CSP forbids eval) */
			await page.waitForSelector('#live.on', { timeout: T });
			return true;
		});
		const before = await page.$$eval('#events tr.ev', (r) => r.length);
		const scenario = runScenario();
		await attempt('events: the demo scenario\'s events appear live (no reload)', async () => {
			await page.waitForSelector('#events tr.new td.subject >> text=shop.example', { timeout: 30000 });
			await page.waitForSelector('#events tr.new td.type >> text=domain.removed', { timeout: 30000 });
			return true;
		});
		ok(await scenario === 0, 'the demo scenario ran');
		const after = await page.$$eval('#events tr.ev', (r) => r.length);
		ok(after > before, 'events: more rows than before (' + before + ' -> ' + after + ')');
		await shot('events-live');

		// filter by user
		await page.fill('#f-user', 'alice');
		await page.click('#filters button[type=submit]');
		await attempt('events: filtered by user, only alice\'s events', async () => {
			for (let i = 0; i < 60 && !page.url().includes('user=alice'); i++)
				await page.waitForTimeout(100);
			await page.waitForSelector('#events tr.ev', { timeout: T });
			const users = await page.$$eval('#events tr.ev td:nth-child(5)', (t) => t.map((x) => x.textContent));
			console.log('# alice rows: ' + users.length);
			return users.length > 0 && users.every((u) => u === 'alice');
		});
		await shot('events-user-alice');

		// an event's page: payload, attempts
		await page.goto(BASE + '/#/event/' + env.DEAD_A);
		await attempt('event page: the dead delivery with its attempts and error', async () => {
			const sel = 'section.delivery[data-handler="lua:fail.lua"]';
			await page.waitForSelector(sel, { timeout: T });
			const st = await page.getAttribute(sel, 'data-state');
			const n = await page.$$eval(sel + ' table.attempts tbody tr', (r) => r.length);
			const t = await page.textContent(sel);
			return st === 'dead' && n === 2 && t.includes('boom');
		});
		await shot('event-dead');

		// dead letters: grouped by handler and error
		await page.goto(BASE + '/#/dead');
		await attempt('dead letters: one group for lua:fail.lua with both events', async () => {
			await page.waitForSelector('section.group[data-handler="lua:fail.lua"]', { timeout: T });
			const ids = await page.$$eval('section.group[data-handler="lua:fail.lua"] tr[data-id]',
				(r) => r.map((x) => x.getAttribute('data-id')));
			return ids.includes(env.DEAD_A) && ids.includes(env.DEAD_B);
		});
		await shot('dead');

		// retry A (the hook is fixed): watch it become done
		await page.goto(BASE + '/#/event/' + env.DEAD_A);
		await page.waitForSelector('section.delivery[data-handler="lua:fail.lua"] button.retry', { timeout: T });
		await page.click('section.delivery[data-handler="lua:fail.lua"] button.retry');
		await attempt('retry from the event page: the delivery becomes done', async () => {
			for (let i = 0; i < 40; i++) {
				await page.waitForTimeout(250);
				const st = await page.getAttribute('section.delivery[data-handler="lua:fail.lua"]',
					'data-state').catch(() => null);
				if (st === 'done')
					return true;
				if (i % 4 === 3)
					await page.evaluate(() => window.dispatchEvent(new HashChangeEvent('hashchange')));
			}
			return false;
		});
		await shot('event-retried');

		// discard B from the dead letters page
		await page.goto(BASE + '/#/dead');
		const discardB = 'section.group[data-handler="lua:fail.lua"] tr[data-id="' + env.DEAD_B + '"] button.discard-one';
		await page.waitForSelector(discardB, { timeout: T });
		await page.click(discardB);
		await attempt('discard from the dead letters page: nothing dead is left', async () => {
			await page.waitForSelector('#no-dead', { timeout: T });
			return true;
		});
		await shot('dead-empty');

		// hooks and plugins
		await page.goto(BASE + '/#/hooks');
		await attempt('hooks page: hooks with state and the lint output', async () => {
			await page.waitForSelector('table.hooks', { timeout: T });
			const h = await page.textContent('table.hooks');
			const lint = await page.textContent('#lint');
			return h.includes('fail.lua') && h.includes('broken.lua') && lint.includes('syntax error');
		});
		await shot('hooks');
		await page.click('tr[data-hook="fail.lua"] button.disable');
		await attempt('hooks: disable fail.lua (hooks disable)', async () => {
			await page.waitForSelector('tr[data-hook="fail.lua"][data-state="disabled"]', { timeout: T });
			return true;
		});
		await shot('hooks-disabled');
		await page.click('tr[data-hook="fail.lua"] button.enable');
		await attempt('hooks: enable it again, it loads', async () => {
			await page.waitForSelector('tr[data-hook="fail.lua"][data-state="loaded"]', { timeout: T });
			return true;
		});
		await page.click('tr[data-plugin="log"] button.disable');
		await attempt('plugins: disable the log plugin', async () => {
			await page.waitForSelector('tr[data-plugin="log"] button.enable', { timeout: T });
			return true;
		});
		await shot('plugins-disabled');
		await page.click('tr[data-plugin="log"] button.enable');
		await attempt('plugins: enable it again', async () => {
			await page.waitForSelector('tr[data-plugin="log"] button.disable', { timeout: T });
			return true;
		});

		// hostile names are text
		await page.goto(BASE + '/#/event/' + env.HOSTILE);
		await attempt('a hostile subject and field show as text, never as markup', async () => {
			await page.waitForSelector('#ev-subject', { timeout: T });
			const subj = await page.textContent('#ev-subject');
			const tags = await page.$$eval('#app b, #app img, #app script', (x) => x.length);
			const pwned = await page.evaluate(() => window.__pwned === undefined);
			const text = await page.textContent('table.payload');
			return subj === env.HOSTILE_SUBJECT && tags === 0 && pwned &&
				text.includes('<img src=x onerror=window.__pwned=1>');
		});
		await shot('event-hostile');

		// the page itself cannot act without the CSRF token
		await attempt('a POST from the page without the CSRF token is refused (403)', async () => {
			const st = await page.evaluate(() => fetch('api/ctl', { method: 'POST',
				headers: { 'Content-Type': 'application/json' },
				body: JSON.stringify({ cmd: 'retry', args: ['--failed'] }) }).then((r) => r.status));
			return st === 403;
		});
		ok(errors.length === 0, 'no script errors on any page', errors.join('; '));
		ok(external === 0, 'nothing loaded from outside the daemon');
	} catch (e) {
		ok(false, 'the browser session', e.message.split('\n')[0]);
	} finally {
		await browser.close();
	}
	process.exit(failures ? 1 : 0);
})();
