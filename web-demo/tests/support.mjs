// What the browser tests share: a static server for dist/, Debian's Chromium driven by
// playwright-core, and helpers that use the page as a person would (through its controls).

import { createReadStream, existsSync, statSync } from 'node:fs';
import { createServer } from 'node:http';
import { extname, join, normalize, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import { inflateRawSync } from 'node:zlib';

import { chromium } from 'playwright-core';

export const demoDir = fileURLToPath(new URL('..', import.meta.url));
export const repoDir = resolve(demoDir, '..');
export const distDir = join(demoDir, 'dist');
export const resultsDir = join(demoDir, 'test-results');

const MIME = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.wasm': 'application/wasm',
  '.json': 'application/json',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.ico': 'image/x-icon',
  '.txt': 'text/plain; charset=utf-8',
};

/** Serves dist/ on 127.0.0.1 on a free port; resolves to `{ url, close }`. */
export async function serveDist() {
  if (!existsSync(join(distDir, 'index.html'))) {
    throw new Error(`${distDir}/index.html is missing: run \`npm run build\` first (or \`npm run test:all\`)`);
  }
  const root = resolve(distDir);
  const server = createServer((request, response) => {
    const path = decodeURIComponent(new URL(request.url ?? '/', 'http://x').pathname);
    let file = normalize(join(root, path));
    if (file !== root && !file.startsWith(root + sep)) {
      response.writeHead(403).end();
      return;
    }
    if (existsSync(file) && statSync(file).isDirectory()) file = join(file, 'index.html');
    if (!existsSync(file)) {
      response.writeHead(404, { 'content-type': 'text/plain' }).end('not found');
      return;
    }
    response.writeHead(200, {
      'content-type': MIME[extname(file)] ?? 'application/octet-stream',
      'cache-control': 'no-store',
    });
    createReadStream(file).pipe(response);
  });
  await new Promise((ok, fail) => {
    server.once('error', fail);
    server.listen(0, '127.0.0.1', ok);
  });
  const { port } = server.address();
  return {
    url: `http://127.0.0.1:${port}/`,
    close: () =>
      new Promise((ok) => {
        server.closeAllConnections?.();
        server.close(() => ok());
      }),
  };
}

export const CHROMIUM = process.env.CHROMIUM ?? '/usr/bin/chromium';

/** Debian's Chromium, headless, with nothing reaching for the network on its own. */
export async function launchBrowser() {
  if (!existsSync(CHROMIUM)) {
    throw new Error(`${CHROMIUM} is missing: apt-get install -y chromium (or set CHROMIUM=/path/to/chromium)`);
  }
  return chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
    ],
  });
}

/**
 * A fresh page, recording every console error, uncaught exception and failed request in
 * `page.problems`.
 */
export async function openPage(browser, url) {
  const context = await browser.newContext({ viewport: { width: 1440, height: 1000 } });
  const page = await context.newPage();
  page.problems = [];
  page.requests = [];
  page.on('request', (request) => page.requests.push(request.url()));
  page.on('console', (message) => {
    if (message.type() === 'error') page.problems.push(`console error: ${message.text()}`);
  });
  page.on('pageerror', (error) => page.problems.push(`page error: ${error.message}`));
  page.on('requestfailed', (request) =>
    page.problems.push(`request failed: ${request.url()} ${request.failure()?.errorText}`),
  );
  page.on('response', (response) => {
    if (response.status() >= 400) page.problems.push(`HTTP ${response.status()}: ${response.url()}`);
  });
  await page.goto(url);
  await page.waitForSelector('body[data-ready="true"]', { timeout: 30_000 });
  await page.waitForSelector('[data-testid="result"][aria-busy="false"]');
  return page;
}

export const byTestId = (id) => `[data-testid="${id}"]`;

/** The number of evaluations the page has finished. */
export function runCount(page) {
  return page.$eval(byTestId('result'), (el) => Number(el.dataset.run));
}

/** Waits for an evaluation after the `before`-th to finish. */
export async function nextRun(page, before) {
  await page.waitForFunction(
    (before) => {
      const el = document.querySelector('[data-testid="result"]');
      return Number(el.dataset.run) > before && el.getAttribute('aria-busy') === 'false';
    },
    before,
    { timeout: 15_000 },
  );
}

/** Does `action`, then waits for the evaluation it causes. */
export async function evaluatedAfter(page, action) {
  const before = await runCount(page);
  await action();
  await nextRun(page, before);
}

/** The decision shown (`allow`, `deny`), or null when there is none. */
export async function decision(page) {
  const el = await page.$(byTestId('decision'));
  return el ? (await el.textContent()).trim() : null;
}

export async function denialCode(page) {
  const el = await page.$(byTestId('denial-code'));
  return el ? (await el.textContent()).trim() : null;
}

/** Replaces a CodeMirror editor's text as a person would: focus, select all, type (insert). */
export async function typeInEditor(page, testid, text) {
  await page.click(`${byTestId(testid)} .cm-content`);
  await page.keyboard.press('ControlOrMeta+a');
  await page.keyboard.press('Delete');
  await page.keyboard.insertText(text);
}

/** The share link once it holds the latest evaluation's state. */
export async function shareLink(page) {
  await page.waitForFunction(() => {
    const link = document.querySelector('[data-testid="share-link"]');
    const result = document.querySelector('[data-testid="result"]');
    return link.dataset.run === result.dataset.run && result.getAttribute('aria-busy') === 'false';
  });
  return page.$eval(byTestId('share-link'), (a) => a.href);
}

/** The state in a share link, decoded here (deflate-raw, base64url JSON), independently of the page. */
export function stateInLink(href) {
  const fragment = new URL(href).hash.slice(1);
  if (!fragment.startsWith('s1.')) throw new Error(`not a share link: ${href}`);
  return JSON.parse(inflateRawSync(Buffer.from(fragment.slice(3), 'base64url')).toString('utf8'));
}
