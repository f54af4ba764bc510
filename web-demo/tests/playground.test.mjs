// The playground in a real browser (Debian's Chromium through playwright-core), on the built
// dist/ served from here. Run with `npm test` after `npm run build` (or `npm run test:all`).

import assert from 'node:assert/strict';
import { generateKeyPairSync, sign } from 'node:crypto';
import { mkdirSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, test } from 'node:test';

import {
  byTestId,
  decision,
  denialCode,
  evaluatedAfter,
  launchBrowser,
  openPage,
  repoDir,
  resultsDir,
  serveDist,
  shareLink,
  stateInLink,
  typeInEditor,
} from './support.mjs';

let server;
let browser;

before(async () => {
  mkdirSync(resultsDir, { recursive: true });
  server = await serveDist();
  browser = await launchBrowser();
});

after(async () => {
  await browser?.close();
  await server?.close();
});

/** Every `test "..."` block of every policies/*.cg file, counted from the files themselves. */
function inlineTestCount() {
  const dir = join(repoDir, 'policies');
  return readdirSync(dir)
    .filter((name) => name.endsWith('.cg'))
    .map((name) => readFileSync(join(dir, name), 'utf8').match(/^test\s+"/gm)?.length ?? 0)
    .reduce((a, b) => a + b, 0);
}

test('the page loads with no console errors, shows the engine version and decides the default example', async () => {
  const page = await openPage(browser, server.url);
  assert.match(await page.textContent(byTestId('version')), /^engine \d+\.\d+\.\d+/);
  assert.match(await decision(page), /^(allow|deny)$/);
  assert.match(await page.textContent(byTestId('eval-time')), /^\d+(\.\d+)? µs per decision$/);
  assert.ok((await page.$$(byTestId('trace-step'))).length > 0, 'the trace lists the checks');
  // The examples are the repository's policies and all their inline tests.
  const options = await page.$$eval(`${byTestId('example-select')} option[value^="test:"]`, (os) => os.length);
  assert.equal(options, inlineTestCount());
  // Keyboard: the controls are reachable with Tab from the top of the page.
  await page.keyboard.press('Tab');
  await page.keyboard.press('Tab');
  assert.equal(await page.evaluate(() => document.activeElement?.dataset.testid), 'example-select');

  // Nothing but the page's own files was requested (no CDN, no fonts), and once loaded it works
  // without the network.
  assert.deepEqual(
    page.requests.filter((url) => !url.startsWith(server.url) && !url.startsWith('data:')),
    [],
  );
  assert.ok(page.requests.some((url) => url.endsWith('.wasm')));
  const loaded = page.requests.length;
  await page.context().setOffline(true);
  const expired = await page.$eval(`${byTestId('example-select')} option[data-code="token_expired"]`, (o) => o.value);
  await evaluatedAfter(page, () => page.selectOption(byTestId('example-select'), expired));
  assert.equal(await decision(page), 'deny');
  assert.equal(await denialCode(page), 'token_expired');
  assert.equal(page.requests.length, loaded, page.requests.slice(loaded).join(', '));

  assert.deepEqual(page.problems, []);
  await page.context().close();
});

test('every example test evaluates to its expected decision', async (t) => {
  const page = await openPage(browser, server.url);
  const examples = await page.$$eval(`${byTestId('example-select')} option[value^="test:"]`, (options) =>
    options.map((o) => ({
      value: o.value,
      file: o.dataset.file,
      name: o.dataset.test,
      expect: o.dataset.expect,
      code: o.dataset.code,
    })),
  );
  assert.ok(examples.length >= 20, `only ${examples.length} examples`);
  for (const example of examples) {
    await t.test(`${example.file}: ${example.name}`, async () => {
      await evaluatedAfter(page, () => page.selectOption(byTestId('example-select'), example.value));
      assert.equal(await decision(page), example.expect);
      if (example.code) assert.equal(await denialCode(page), example.code);
    });
  }
  assert.deepEqual(page.problems, []);
  await page.context().close();
});

test('editing a claim turns allow into deny, and the failing condition is highlighted in the editor', async () => {
  const page = await openPage(browser, server.url);
  const example = await page.$eval(
    `${byTestId('example-select')} option[data-file="gitlab.cg"][data-expect="allow"]`,
    (o) => o.value,
  );
  await evaluatedAfter(page, () => page.selectOption(byTestId('example-select'), example));
  await evaluatedAfter(page, () => page.selectOption(byTestId('role-select'), 'gitlab-deploy-production'));
  assert.equal(await decision(page), 'allow');
  assert.match(await page.textContent(byTestId('grant-identity')), /^gitlab\/mygroup\/myproject$/);

  // The claims the page holds, through its share link (decoded here), with one claim changed.
  const claims = JSON.parse(stateInLink(await shareLink(page)).claims);
  assert.equal(claims.ref_type, 'branch');
  claims.ref_type = 'tag';
  await evaluatedAfter(page, () => typeInEditor(page, 'claims-editor', JSON.stringify(claims, null, 2)));

  assert.equal(await decision(page), 'deny');
  assert.equal(await denialCode(page), 'claim_mismatch');
  const condition = 'claims.ref_type == "branch"';
  assert.equal(await page.textContent(byTestId('denial-condition')), condition);
  // The failing condition is marked in the policy as soon as the decision is shown...
  const marked = (cls) =>
    page.$$eval(`${byTestId('policy-editor')} .${cls}`, (nodes) => nodes.map((n) => n.textContent).join(''));
  assert.equal(await marked('cm-failing-condition'), condition);
  // ...and its trace line, failed with the value seen, selects it in the editor when clicked.
  const failed = page.locator(`${byTestId('trace-step')}[data-outcome="fail"]`);
  assert.equal(await failed.count(), 1);
  assert.match(await failed.textContent(), /claims\.ref_type == "branch"/);
  assert.equal(await failed.locator(byTestId('trace-seen')).textContent(), '"tag"');
  await failed.click();
  assert.equal(await marked('cm-trace-target'), condition);
  assert.equal(await page.evaluate(() => window.getSelection()?.toString()), condition);
  assert.equal(
    await page.evaluate(() => document.activeElement?.closest('[data-testid]')?.dataset.testid),
    'policy-editor',
  );

  await page.screenshot({ path: join(resultsDir, 'playground.png'), fullPage: true });
  assert.deepEqual(page.problems, []);
  await page.context().close();
});

const BROKEN_POLICY = `provider ci {
  issuer = "https://ci.example.com"
  keys { jwks_url = "https://ci.example.com/keys" }
  algorithms = [EdDSA]
}

role deploy {
  provider = ci
  audience = "vault"
  require {
    claims.ref = "main"
  }
}
`;

test('a syntax error is underlined with its message, line and column', async () => {
  const page = await openPage(browser, server.url);
  await evaluatedAfter(page, () => typeInEditor(page, 'policy-editor', BROKEN_POLICY));

  // Where the error is, worked out here: the `=` on the `claims.ref = "main"` line.
  const offset = BROKEN_POLICY.indexOf(' = "main"') + 1;
  const line = BROKEN_POLICY.slice(0, offset).split('\n').length;
  const column = offset - BROKEN_POLICY.lastIndexOf('\n', offset - 1);
  assert.deepEqual([line, column], [11, 16]);

  const underline = page.locator(`${byTestId('policy-editor')} .cm-lintRange-error`);
  await underline.first().waitFor();
  assert.equal(await underline.first().textContent(), '=');

  const item = page.locator(`${byTestId('diagnostics')} [data-testid="diagnostic"]`).first();
  assert.equal(await item.getAttribute('data-code'), 'E0001');
  assert.equal(await item.locator(byTestId('diagnostic-position')).textContent(), `${line}:${column}`);
  const message = await item.locator(byTestId('diagnostic-message')).textContent();
  assert.match(message, /expected an operator .*found `=`/);

  // The editor's own tooltip says the same on hover.
  await underline.first().hover();
  const tooltip = page.locator('.cm-tooltip-lint');
  await tooltip.waitFor();
  assert.ok((await tooltip.textContent()).includes(message), await tooltip.textContent());
  assert.match(await tooltip.textContent(), new RegExp(`line ${line}, column ${column}`));

  // No decision on a policy with errors: the page says why instead.
  assert.equal(await decision(page), null);
  assert.equal(await page.getAttribute(byTestId('eval-error'), 'data-stage'), 'policy');

  // Fixing it brings the decision back.
  await evaluatedAfter(page, () =>
    typeInEditor(page, 'policy-editor', BROKEN_POLICY.replace(' = "main"', ' == "main"')),
  );
  assert.equal(await page.locator(`${byTestId('policy-editor')} .cm-lintRange-error`).count(), 0);
  assert.match(await decision(page), /^(allow|deny)$/);
  assert.deepEqual(page.problems, []);
  await page.context().close();
});

const TWO_PROVIDERS = `provider ci {
  issuer = "https://ci.example.com"
  keys {
    jwks_url = "https://ci.example.com/keys"
  }
  algorithms = [EdDSA]
}

provider idp {
  issuer = "https://idp.example.com"
  keys {
    jwks_url = "https://idp.example.com/keys"
  }
  algorithms = [EdDSA]
}

role deploy {
  provider = ci
  audience = "vault"
  require {
    claims.ref == "main"
  }
  identity = "ci/" + claims.sub
}

role api {
  provider = idp
  audience = "vault"
  identity = claims.sub
}
`;

/** An Ed25519 key of ours: its JWK Set, and compact JWS tokens signed with it. */
function ed25519Signer(kid) {
  const { publicKey, privateKey } = generateKeyPairSync('ed25519');
  const b64 = (value) => Buffer.from(JSON.stringify(value)).toString('base64url');
  return {
    jwks: JSON.stringify(
      { keys: [{ ...publicKey.export({ format: 'jwk' }), kid, alg: 'EdDSA', use: 'sig' }] },
      null,
      2,
    ),
    sign(claims) {
      const input = `${b64({ alg: 'EdDSA', typ: 'JWT', kid })}.${b64(claims)}`;
      return `${input}.${sign(null, Buffer.from(input), privateKey).toString('base64url')}`;
    },
  };
}

/** Puts a signed-token case on the page: our policy, token mode, the token and its keys. */
async function tokenCase(page, signer) {
  const now = Math.floor(Date.now() / 1000);
  const claims = {
    iss: 'https://ci.example.com',
    sub: 'project-1',
    aud: 'vault',
    ref: 'main',
    iat: now - 10,
    exp: now + 600,
  };
  const token = signer.sign(claims);
  await evaluatedAfter(page, () => typeInEditor(page, 'policy-editor', TWO_PROVIDERS));
  await evaluatedAfter(page, () => page.check(byTestId('mode-token')));
  await evaluatedAfter(page, () => page.fill(byTestId('token-input'), token));
  await evaluatedAfter(page, () => page.fill(byTestId('jwks-input'), signer.jwks));
  await evaluatedAfter(page, () => page.fill(byTestId('now-input'), String(now)));
  return { claims, token, now };
}

test('a token signed here verifies against its JWK Set, and a tampered one is refused', async () => {
  const page = await openPage(browser, server.url);
  const signer = ed25519Signer('ci-1');
  const { token } = await tokenCase(page, signer);

  // The token box decodes the token for display.
  assert.match(await page.textContent(byTestId('decoded-header')), /"alg": "EdDSA"/);
  assert.match(await page.textContent(byTestId('decoded-payload')), /"ref": "main"/);

  // Two providers, automatic role, no provider said: whose keys these are is not guessed.
  assert.equal(await page.isVisible(byTestId('provider-select')), true);
  assert.equal(await decision(page), null);
  assert.equal(await page.getAttribute(byTestId('eval-error'), 'data-stage'), 'keys');
  assert.match(await page.textContent(byTestId('eval-error')), /say whose keys these are/);

  await evaluatedAfter(page, () => page.selectOption(byTestId('provider-select'), 'ci'));
  assert.equal(await decision(page), 'allow');
  assert.equal(await page.getAttribute(byTestId('signature'), 'data-verified'), 'true');
  assert.equal(await page.textContent(byTestId('grant-identity')), 'ci/project-1');

  // The same keys said to be the other provider's: the token's own provider has none.
  await evaluatedAfter(page, () => page.selectOption(byTestId('provider-select'), 'idp'));
  assert.equal(await decision(page), 'deny');
  assert.equal(await denialCode(page), 'keys_unavailable');
  await evaluatedAfter(page, () => page.selectOption(byTestId('provider-select'), 'ci'));

  // The payload swapped for another (`ref` changed), the signature kept.
  const [header, payload, signature] = token.split('.');
  const changed = JSON.parse(Buffer.from(payload, 'base64url').toString());
  changed.ref = 'release';
  const tampered = [header, Buffer.from(JSON.stringify(changed)).toString('base64url'), signature].join('.');
  await evaluatedAfter(page, () => page.fill(byTestId('token-input'), tampered));
  assert.equal(await decision(page), 'deny');
  assert.equal(await denialCode(page), 'signature_invalid');
  assert.equal(await page.getAttribute(byTestId('signature'), 'data-verified'), 'false');
  assert.equal(await page.$(byTestId('grant')), null);

  await page.screenshot({ path: join(resultsDir, 'playground-token.png'), fullPage: true });
  assert.deepEqual(page.problems, []);
  await page.context().close();
});

test('a share link opened in a fresh page restores the same state and decision', async () => {
  const page = await openPage(browser, server.url);
  const signer = ed25519Signer('ci-2');
  const { token, now } = await tokenCase(page, signer);
  await evaluatedAfter(page, () => page.selectOption(byTestId('role-select'), 'deploy'));
  assert.equal(await decision(page), 'allow');
  const href = await shareLink(page);
  const traceBefore = await page.$$eval('[data-testid="trace-step"]', (steps) =>
    steps.map((s) => `${s.dataset.outcome} ${s.textContent}`),
  );
  assert.ok(traceBefore.length > 0);
  await page.context().close();

  // The link holds the whole state (read here, independently of the page).
  const state = stateInLink(href);
  assert.equal(state.policy, TWO_PROVIDERS);
  assert.equal(state.mode, 'token');
  assert.equal(state.token, token);
  assert.equal(state.jwks, signer.jwks);
  assert.equal(state.now, String(now));
  assert.equal(state.role, 'deploy');

  const fresh = await openPage(browser, href);
  assert.equal(await decision(fresh), 'allow');
  assert.equal(await fresh.inputValue(byTestId('token-input')), token);
  assert.equal(await fresh.inputValue(byTestId('jwks-input')), signer.jwks);
  assert.equal(await fresh.inputValue(byTestId('now-input')), String(now));
  assert.equal(await fresh.inputValue(byTestId('role-select')), 'deploy');
  assert.equal(await fresh.isChecked(byTestId('mode-token')), true);
  assert.equal(await fresh.textContent(byTestId('grant-identity')), 'ci/project-1');
  const traceAfter = await fresh.$$eval('[data-testid="trace-step"]', (steps) =>
    steps.map((s) => `${s.dataset.outcome} ${s.textContent}`),
  );
  assert.deepEqual(traceAfter, traceBefore);
  // The restored page's own link is the same link: the same state, nothing lost or added.
  assert.equal(await shareLink(fresh), href);
  assert.deepEqual(fresh.problems, []);
  await fresh.context().close();

  // A denial restores as a denial, with its code.
  const denied = await openPage(browser, server.url);
  const example = await denied.$eval(`${byTestId('example-select')} option[data-code="token_expired"]`, (o) => o.value);
  await evaluatedAfter(denied, () => denied.selectOption(byTestId('example-select'), example));
  const deniedHref = await shareLink(denied);
  await denied.context().close();
  const again = await openPage(browser, deniedHref);
  assert.equal(await decision(again), 'deny');
  assert.equal(await denialCode(again), 'token_expired');
  assert.deepEqual(again.problems, []);
  await again.context().close();
});
