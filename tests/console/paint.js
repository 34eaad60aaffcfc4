// bench/console's browser half: log in to each console given, open the
// events page REPEAT times in a fresh tab, and print per console:
//   LABEL first_paint_ms table_ms page_kb
// (first-contentful-paint from the Performance API; table_ms: the frame
// after the first event rows are in the page; page_kb: bytes transferred
// for the document, script, style and API answers, medians of the runs).
// Usage: node paint.js CHROMIUM PROFILE REPEAT LABEL=BASE=TOKEN...
'use strict';
const { chromium } = require('playwright-core');

const [chrome, profile, repeat, ...targets] = process.argv.slice(2);
const median = (a) => a.slice().sort((x, y) => x - y)[Math.floor(a.length / 2)];

(async () => {
	const ctx = await chromium.launchPersistentContext(profile, {
		executablePath: chrome, headless: true,
		args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
			'--disable-background-networking', '--disable-component-update', '--disable-sync'],
		viewport: { width: 1280, height: 800 },
	});
	try {
		for (const t of targets) {
			const [label, base, token] = t.split('=');
			const login = await ctx.newPage();
			await login.goto(base + '/login');
			await login.fill('#token', token);
			await Promise.all([login.waitForNavigation(), login.click('button[type=submit]')]);
			await login.close();
			const fp = [], tab = [], kb = [];
			for (let i = 0; i < Number(repeat); i++) {
				const page = await ctx.newPage();
				const cdp = await ctx.newCDPSession(page);
				await cdp.send('Network.enable');
				await cdp.send('Network.setCacheDisabled', { cacheDisabled: true });
				let bytes = 0;
				cdp.on('Network.loadingFinished', (e) => { bytes += e.encodedDataLength; });
				await page.goto(base + '/#/events');
				await page.waitForSelector('#events tr.ev', { timeout: 60000 });
				const m = await page.evaluate(() => new Promise((res) => requestAnimationFrame(() => {
					const p = performance.getEntriesByName('first-contentful-paint')[0];
					res({ fcp: p ? p.startTime : -1, table: performance.now() });
				})));
				await page.waitForTimeout(200);
				fp.push(m.fcp);
				tab.push(m.table);
				kb.push(bytes / 1024);
				await page.close();
			}
			console.log(label + ' ' + median(fp).toFixed(0) + ' ' + median(tab).toFixed(0) + ' ' +
				median(kb).toFixed(1));
		}
	} finally {
		await ctx.close();
	}
})().catch((e) => { console.error(e.message); process.exit(1); });
