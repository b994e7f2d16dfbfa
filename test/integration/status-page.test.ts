import { existsSync, mkdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { chromium, type Browser } from 'playwright-core';
import { afterAll, describe, expect, it } from 'vitest';
import { KafkaHelper, database, uniqueName, waitFor, topicAndTable } from '../helpers/stack.js';
import { testSluice } from '../helpers/sluice.js';

/** Debian's Chromium (scripts/tools.sh installs it for CI); elsewhere CHROMIUM_PATH, or the test is skipped. */
const executablePath = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
const screenshots = fileURLToPath(new URL('../../.local/screenshots/', import.meta.url));

let browser: Browser | undefined;
afterAll(() => browser?.close());

describe.skipIf(!existsSync(executablePath))('the status page at /', () => {
  it('shows a real run live in Chromium: state, partitions with their offsets and lag, throughput, and the records sent to the DLQ with their reason', async () => {
    const { kafka, topic, db, table } = await topicAndTable({ partitions: 3, topic: 'orders', table: 'orders', columns: 'id text PRIMARY KEY, name text NOT NULL, qty int' });
    // 3,000 records, 3 of them without a name: poison (NOT NULL); and one whose qty is markup, which PostgreSQL's
    // error quotes back: the page must show it as text.
    const markup = '<img src=x onerror="document.title=1">';
    await kafka.produce(topic, Array.from({ length: 3_000 }, (_, i) => ({ key: `o${i}`, value: JSON.stringify(i % 1_000 === 17 ? {} : { name: `n${i}` }) })));
    await kafka.produce(topic, [{ key: 'm', value: JSON.stringify({ name: 'm', qty: markup }), partition: 0 }]);
    const { sluice, groupId } = testSluice({ routes: [{ topic, table, key: ['id'], columns: { id: { from: 'key' }, name: 'name', qty: 'qty' } }] });
    await sluice.start();
    await waitFor('every offset committed', () => kafka.isFullyCommitted(groupId, topic));

    browser = await chromium.launch({
      executablePath,
      args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
    });
    const page = await browser.newPage({ viewport: { width: 1400, height: 900 } });
    const requested: string[] = [];
    const errors: string[] = [];
    page.on('request', (request) => requested.push(request.url()));
    page.on('pageerror', (error) => errors.push(error.message));
    page.on('console', (message) => {
      if (message.type() === 'error') errors.push(message.text());
    });
    const origin = `http://127.0.0.1:${sluice.httpAddress!.port}`;
    await page.goto(`${origin}/`);

    // Selectors, not script: the page's CSP allows no eval, which a function or string to wait on would need.
    await page.waitForSelector('#partitions tbody tr td:nth-child(2)');
    expect(await page.textContent('#state')).toBe('running');
    expect(await page.textContent('#ready')).toBe('ready');
    const rows = await page.$$eval('#partitions tbody tr', (trs) => trs.map((tr) => [...tr.querySelectorAll('td')].map((td) => td.textContent)));
    expect(rows.map((r) => r[0])).toEqual([0, 1, 2].map((p) => `${topic}[${p}]`));
    const ends = await kafka.endOffsets(topic);
    for (const [p, row] of rows.entries()) {
      // last flushed, committed and log end are the partition's end; lag 0.
      expect(row.slice(4, 8)).toEqual([ends.get(p), ends.get(p), ends.get(p), '0']);
    }
    expect(await page.textContent('#flushed')).toBe('3,001');
    expect(await page.textContent('#dlq')).toBe('4');
    const dead = await page.$$eval('#dead tbody tr', (trs) => trs.map((tr) => [...tr.querySelectorAll('td')].map((td) => td.textContent)));
    expect(dead).toHaveLength(4);
    for (const row of dead) {
      expect(row[2]).toBe(`${topic}.dlq`);
      expect(row[3]).toBe('SLUICE_POISON_RECORD');
    }
    expect(dead.filter((row) => row[4] === '23502' && row[5]!.includes('null value in column "name"'))).toHaveLength(3);
    // The markup is shown as the text it is, and never became an element.
    expect(dead.some((row) => row[4] === '22P02' && row[5]!.includes(markup))).toBe(true);
    expect(await page.$$('#dead img')).toHaveLength(0);
    expect(await page.title()).toBe('sluice status');
    // The throughput chart draws once the page has two samples of /status.
    await page.waitForSelector('#rate-chart polyline', { state: 'attached' });
    mkdirSync(screenshots, { recursive: true });
    await page.screenshot({ path: `${screenshots}status-page.png`, fullPage: true });
    // Self-contained: nothing but this sluice was asked for anything, and the page ran without an error.
    expect(requested.every((url) => url.startsWith(origin)), requested.join(', ')).toBe(true);
    expect(errors).toEqual([]);
  });
});

describe('http.status', () => {
  it('summary hides the texts that can quote record values; off serves neither /status nor the page', async () => {
    const { kafka, topic, db, table } = await topicAndTable({ partitions: 1, topic: 'orders', table: 'orders', columns: 'id text PRIMARY KEY, qty int' });
    await kafka.produce(topic, [{ key: 'a', value: JSON.stringify({ qty: 'card 4111-1111' }) }, { key: 'b', value: JSON.stringify({ qty: 2 }) }]);
    const routes = [{ topic, table, key: ['id'], columns: { id: { from: 'key' as const }, qty: 'qty' } }];
    const { sluice, groupId } = testSluice({ routes, http: { port: 0, host: '127.0.0.1', status: 'summary' } });
    await sluice.start();
    await waitFor('every offset committed', () => kafka.isFullyCommitted(groupId, topic));
    const origin = `http://127.0.0.1:${sluice.httpAddress!.port}`;
    const summary = await (await fetch(`${origin}/status`)).text();
    expect(JSON.parse(summary)).toMatchObject({ dlq: { sentRecords: 1, recent: [{ reason: '(hidden)', code: 'SLUICE_POISON_RECORD', sqlState: '22P02' }] } });
    expect(summary).not.toContain('4111');
    // The full document has it: that is what summary is for.
    expect(JSON.stringify(sluice.status())).toContain('4111');

    const off = testSluice({ routes, http: { port: 0, host: '127.0.0.1', status: 'off' } });
    await off.sluice.start();
    const offOrigin = `http://127.0.0.1:${off.sluice.httpAddress!.port}`;
    expect((await fetch(`${offOrigin}/status`)).status).toBe(404);
    expect((await fetch(`${offOrigin}/`)).status).toBe(404);
    expect((await fetch(`${offOrigin}/readyz`)).status).toBe(200);

    // /readyz follows the setting too: a halted sluice says it stopped, not the error (which can quote a record).
    const halted = testSluice({ routes, http: { port: 0, host: '127.0.0.1', status: 'summary' }, breaker: { maxDlqRatio: 0, minRecords: 1, windowMs: 60_000 } });
    await halted.sluice.start();
    await waitFor('halted by the breaker', () => halted.sluice.state === 'halted');
    const readyz = await fetch(`http://127.0.0.1:${halted.sluice.httpAddress!.port}/readyz`);
    expect(readyz.status).toBe(503);
    const reasons = await readyz.text();
    expect(reasons).toContain('consumption stopped: (the error is in the logs)');
    expect(halted.sluice.status().error).toContain('breaker opened');
    expect(reasons).not.toContain('breaker opened');
  });
});
