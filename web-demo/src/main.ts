// The playground: wires the editors and controls to the engine, evaluates (debounced) on every
// change, renders the decision and its trace, and keeps the whole state in the URL fragment.

import './style.css';

import type { EditorView } from '@codemirror/view';

import { createClaimsEditor, createPolicyEditor, markRange, reveal, setText, showDiagnostics } from './editors';
import {
  check,
  decode,
  evaluate,
  format,
  loadEngine,
  version,
  type CheckResult,
  type Diagnostic,
  type Evaluation,
  type Failure,
  type InlineTest,
} from './engine';
import { exampleFiles, type ExampleFile } from './examples';
import { fill, formatDuration, formatTime, h, jsonText } from './render';
import { decodeState, encodeState, type InputMode, type PlaygroundState } from './share';

const DEBOUNCE_MS = 200;

function byId<T extends HTMLElement>(id: string): T {
  const node = document.getElementById(id);
  if (!node) throw new Error(`#${id} is missing from index.html`);
  return node as T;
}

const ui = {
  version: byId<HTMLElement>('version'),
  examples: byId<HTMLSelectElement>('example-select'),
  formatButton: byId<HTMLButtonElement>('format-button'),
  copyLink: byId<HTMLButtonElement>('copy-link'),
  shareLink: byId<HTMLAnchorElement>('share-link'),
  toolbarStatus: byId<HTMLElement>('toolbar-status'),
  checkSummary: byId<HTMLElement>('check-summary'),
  diagnostics: byId<HTMLUListElement>('diagnostics'),
  claimsPane: byId<HTMLElement>('claims-pane'),
  tokenPane: byId<HTMLElement>('token-pane'),
  token: byId<HTMLTextAreaElement>('token-input'),
  decoded: byId<HTMLElement>('decoded'),
  jwks: byId<HTMLTextAreaElement>('jwks-input'),
  providerRow: byId<HTMLElement>('provider-row'),
  provider: byId<HTMLSelectElement>('provider-select'),
  now: byId<HTMLInputElement>('now-input'),
  nowPin: byId<HTMLButtonElement>('now-pin'),
  nowClear: byId<HTMLButtonElement>('now-clear'),
  role: byId<HTMLSelectElement>('role-select'),
  result: byId<HTMLElement>('result'),
  modes: Array.from(document.querySelectorAll<HTMLInputElement>('input[name="mode"]')),
};

let policyView: EditorView;
let claimsView: EditorView;
let examples: ExampleFile[] = [];

/** Set while the page itself fills the editors (an example, a link), not the user. */
let loading = false;
let timer: ReturnType<typeof setTimeout> | undefined;
let runs = 0;
let lastChecked: { source: string; result: CheckResult } | null = null;
/** The fragment last written to the address bar, to tell our own changes from a pasted link. */
let currentFragment = '';

// ---------------------------------------------------------------------------------------------
// State

function mode(): InputMode {
  return ui.modes.find((m) => m.checked)?.value === 'token' ? 'token' : 'claims';
}

function currentState(): PlaygroundState {
  return {
    policy: policyView.state.doc.toString(),
    mode: mode(),
    claims: claimsView.state.doc.toString(),
    token: ui.token.value,
    jwks: ui.jwks.value,
    provider: ui.provider.value,
    now: ui.now.value.trim(),
    role: ui.role.value,
  };
}

function applyState(state: PlaygroundState): void {
  loading = true;
  try {
    setText(policyView, state.policy);
    setText(claimsView, state.claims);
    ui.token.value = state.token;
    ui.jwks.value = state.jwks;
    ui.now.value = state.now;
    for (const m of ui.modes) m.checked = m.value === state.mode;
    refreshNames(state.policy, state.role, state.provider);
    showMode();
  } finally {
    loading = false;
  }
}

// ---------------------------------------------------------------------------------------------
// Names in the policy: roles for the role select, providers for the keys' provider

const NAME = '([A-Za-z_][A-Za-z0-9_-]*)';

function declared(source: string, keyword: 'role' | 'provider'): string[] {
  const names: string[] = [];
  for (const match of source.matchAll(new RegExp(`^[ \\t]*${keyword}[ \\t]+${NAME}[ \\t]*\\{`, 'gm'))) {
    if (!names.includes(match[1])) names.push(match[1]);
  }
  return names;
}

function fillSelect(select: HTMLSelectElement, options: [value: string, label: string][], selected: string): void {
  const same =
    select.options.length === options.length &&
    options.every(([value, label], i) => select.options[i].value === value && select.options[i].text === label);
  if (!same) {
    select.replaceChildren(...options.map(([value, label]) => h('option', { value }, label)));
  }
  select.value = selected;
}

function refreshNames(source: string, role = ui.role.value, provider = ui.provider.value): void {
  const roles = declared(source, 'role');
  const roleOptions: [string, string][] = [['', 'automatic'], ...roles.map((r): [string, string] => [r, r])];
  if (role && !roles.includes(role)) roleOptions.push([role, `${role} (not in the policy)`]);
  fillSelect(ui.role, roleOptions, role);

  const providers = declared(source, 'provider');
  const first =
    ui.role.value !== ''
      ? 'the role’s provider'
      : providers.length === 1
        ? `${providers[0]} (the only provider)`
        : 'choose a provider';
  const providerOptions: [string, string][] = [['', first], ...providers.map((p): [string, string] => [p, p])];
  if (provider && !providers.includes(provider)) providerOptions.push([provider, `${provider} (not in the policy)`]);
  fillSelect(ui.provider, providerOptions, provider);
  ui.providerRow.hidden = !(providers.length > 1 || provider !== '');
}

function showMode(): void {
  const token = mode() === 'token';
  ui.claimsPane.hidden = token;
  ui.tokenPane.hidden = !token;
}

// ---------------------------------------------------------------------------------------------
// Evaluation

function schedule(): void {
  ui.result.setAttribute('aria-busy', 'true');
  clearTimeout(timer);
  timer = setTimeout(run, DEBOUNCE_MS);
}

function runNow(): void {
  clearTimeout(timer);
  run();
}

function checked(source: string): CheckResult {
  if (lastChecked?.source !== source) lastChecked = { source, result: check(source) };
  return lastChecked.result;
}

function run(): void {
  timer = undefined;
  const state = currentState();
  refreshNames(state.policy);

  // A trace line's mark belongs to the trace it came from.
  markRange(policyView, 'target', null);
  const checkResult = checked(state.policy);
  showDiagnostics(policyView, checkResult.diagnostics);
  renderDiagnostics(checkResult);

  if (state.mode === 'token') renderDecoded(state.token);

  const input = state.mode === 'token' ? state.token : state.claims;
  const options =
    state.mode === 'token'
      ? { now: state.now, role: state.role, jwks: state.jwks, provider: state.provider }
      : { now: state.now, role: state.role };
  let result: Evaluation | Failure;
  try {
    result = evaluate(state.policy, input, options);
  } catch (error) {
    result = { ok: false, error: `the engine failed: ${String(error)}`, stage: 'engine' };
  }
  runs += 1;
  renderResult(result, state);
  ui.result.dataset.run = String(runs);
  ui.result.setAttribute('aria-busy', 'false');
  void updateShareLink(state, runs);
}

// ---------------------------------------------------------------------------------------------
// Rendering

function renderDiagnostics(result: CheckResult): void {
  const { errors, warnings } = result;
  ui.checkSummary.textContent =
    errors + warnings === 0
      ? 'no problems'
      : [
          errors && `${errors} error${errors === 1 ? '' : 's'}`,
          warnings && `${warnings} warning${warnings === 1 ? '' : 's'}`,
        ]
          .filter(Boolean)
          .join(', ');
  ui.checkSummary.className = `check-summary ${errors ? 'has-errors' : warnings ? 'has-warnings' : 'clean'}`;
  fill(
    ui.diagnostics,
    ...result.diagnostics.map((d: Diagnostic) =>
      h(
        'li',
        {
          class: `diagnostic ${d.severity}`,
          'data-testid': 'diagnostic',
          'data-code': d.code,
          'data-line': String(d.line),
          'data-column': String(d.column),
        },
        h(
          'button',
          {
            type: 'button',
            class: 'diagnostic-button',
            title: 'Show in the policy',
            onclick: () => reveal(policyView, d),
          },
          h('span', { class: `severity ${d.severity}` }, d.severity),
          ' ',
          h('code', { class: 'code' }, d.code),
          ' ',
          h('span', { class: 'where', 'data-testid': 'diagnostic-position' }, `${d.line}:${d.column}`),
          ' ',
          h('span', { class: 'message', 'data-testid': 'diagnostic-message' }, d.message),
          d.label ? h('span', { class: 'label' }, ` — ${d.label}`) : null,
        ),
        d.help ? h('div', { class: 'help' }, `help: ${d.help}`) : null,
      ),
    ),
  );
}

function renderDecoded(token: string): void {
  if (token.trim() === '') {
    fill(ui.decoded);
    return;
  }
  const decoded = decode(token);
  if (!decoded.ok) {
    fill(ui.decoded, h('p', { class: 'decode-error', 'data-testid': 'decode-error' }, decoded.error));
    return;
  }
  fill(
    ui.decoded,
    h('p', { class: 'hint' }, 'Decoded without verification (the signature is checked by the decision):'),
    h(
      'div',
      { class: 'decoded-parts' },
      h(
        'div',
        {},
        h('span', { class: 'field-label' }, 'Header'),
        h('pre', { 'data-testid': 'decoded-header' }, jsonText(decoded.header, 2)),
      ),
      h(
        'div',
        {},
        h('span', { class: 'field-label' }, 'Payload'),
        h('pre', { 'data-testid': 'decoded-payload' }, jsonText(decoded.payload, 2)),
      ),
    ),
    h('p', { class: 'hint' }, `Signature: ${decoded.signature_bytes ?? 'not base64url'} bytes`),
    decoded.problem
      ? h('p', { class: 'decode-error' }, h('code', {}, decoded.problem.code), ' ', decoded.problem.message)
      : null,
  );
}

function renderResult(result: Evaluation | Failure, state: PlaygroundState): void {
  if (!result.ok) {
    markRange(policyView, 'failing', null);
    const where =
      result.stage === 'policy'
        ? 'Fix the problems listed under the policy.'
        : result.stage === 'input'
          ? state.mode === 'token'
            ? 'Check the token.'
            : 'Check the claims.'
          : result.stage === 'keys'
            ? 'Check the keys and whose keys they are.'
            : '';
    fill(
      ui.result,
      h(
        'div',
        { class: 'eval-error', role: 'alert', 'data-testid': 'eval-error', 'data-stage': result.stage ?? '' },
        h('strong', {}, 'No decision: '),
        result.error,
        where ? h('p', {}, where) : null,
      ),
    );
    return;
  }

  const denial = result.denial;
  markRange(policyView, 'failing', denial?.condition ?? null);
  const micros = result.time.micros_per_decision;
  fill(
    ui.result,
    h(
      'div',
      { class: 'summary', role: 'status' },
      h('span', { class: `badge ${result.decision}`, 'data-testid': 'decision' }, result.decision),
      result.role
        ? h('span', { class: 'summary-role' }, 'role ', h('code', { 'data-testid': 'result-role' }, result.role))
        : null,
      denial ? h('code', { class: 'denial-code', 'data-testid': 'denial-code' }, denial.code) : null,
    ),
    h(
      'p',
      { class: 'meta' },
      'at ',
      h(
        'time',
        { 'data-testid': 'result-now', datetime: formatTime(result.now) },
        `${formatTime(result.now)} (${result.now})`,
      ),
      state.now === '' ? ' (the clock)' : '',
      ' · ',
      h(
        'span',
        { 'data-testid': 'eval-time', title: `${result.time.runs} decisions timed` },
        `${micros < 10 ? micros.toFixed(2) : micros.toFixed(1)} µs per decision`,
      ),
    ),
    denial ? renderDenial(result) : null,
    result.grant ? renderGrant(result) : null,
    result.signature ? renderSignature(result) : null,
    renderTrace(result),
  );
}

function renderDenial(result: Evaluation): HTMLElement {
  const denial = result.denial!;
  const condition = denial.condition;
  return h(
    'div',
    { class: 'denial', 'data-testid': 'denial' },
    h('p', { class: 'denial-message', 'data-testid': 'denial-message' }, denial.message),
    condition
      ? h(
          'p',
          {},
          'Failing condition: ',
          h(
            'button',
            {
              type: 'button',
              class: 'link-button',
              'data-testid': 'denial-condition',
              onclick: () => reveal(policyView, condition),
            },
            h('code', {}, condition.text),
          ),
          ` (line ${condition.line}, column ${condition.column})`,
        )
      : null,
    denial.actual !== null && denial.actual !== undefined
      ? h('p', {}, 'Value in the token: ', h('code', { 'data-testid': 'denial-actual' }, jsonText(denial.actual)))
      : denial.seen
        ? h('p', { 'data-testid': 'denial-seen' }, denial.seen.charAt(0).toUpperCase() + denial.seen.slice(1) + '.')
        : null,
  );
}

function definition(term: string, value: Node | string | null, testid?: string): HTMLElement[] {
  if (value === null) return [];
  return [h('dt', {}, term), h('dd', testid ? { 'data-testid': testid } : {}, value)];
}

function list(items: string[]): Node | string {
  return items.length === 0
    ? 'none'
    : h('ul', { class: 'inline-list' }, ...items.map((item) => h('li', {}, h('code', {}, item))));
}

function renderGrant(result: Evaluation): HTMLElement {
  const grant = result.grant!;
  const token = grant.token;
  const settings: [string, string | null][] = [
    ['ttl', formatDuration(token.ttl)],
    ['max_ttl', formatDuration(token.max_ttl)],
    ['explicit_max_ttl', formatDuration(token.explicit_max_ttl)],
    ['period', formatDuration(token.period)],
    ['num_uses', token.num_uses === null ? null : token.num_uses === 0 ? '0 (unlimited)' : String(token.num_uses)],
    ['bound_cidrs', token.bound_cidrs.length ? token.bound_cidrs.join(', ') : null],
    ['type', token.type],
    ['no_default_policy', token.no_default_policy ? 'true' : null],
  ];
  const metadata = Object.entries(grant.metadata);
  return h(
    'div',
    { class: 'grant', 'data-testid': 'grant' },
    h('h3', {}, 'Grant'),
    h(
      'dl',
      {},
      ...definition('Identity', h('code', {}, grant.identity), 'grant-identity'),
      ...definition('User', grant.user === null ? null : h('code', {}, grant.user), 'grant-user'),
      ...definition('Groups', list(grant.groups), 'grant-groups'),
      ...definition('Policies', list(grant.policies), 'grant-policies'),
      ...definition(
        'Metadata',
        metadata.length === 0
          ? 'none'
          : h(
              'table',
              { class: 'kv' },
              ...metadata.map(([k, v]) => h('tr', {}, h('th', { scope: 'row' }, k), h('td', {}, h('code', {}, v)))),
            ),
        'grant-metadata',
      ),
      ...definition(
        'Token',
        h(
          'table',
          { class: 'kv' },
          ...settings
            .filter(([, v]) => v !== null)
            .map(([k, v]) => h('tr', {}, h('th', { scope: 'row' }, k), h('td', {}, v!))),
        ),
        'grant-token',
      ),
    ),
  );
}

function renderSignature(result: Evaluation): HTMLElement {
  const s = result.signature!;
  return h(
    'div',
    {
      class: `signature ${s.verified ? 'verified' : 'unverified'}`,
      'data-testid': 'signature',
      'data-verified': String(s.verified),
    },
    h('h3', {}, 'Signature'),
    s.verified
      ? h(
          'p',
          {},
          `Verified with ${s.key ?? 'a key'} of provider `,
          h('code', {}, s.provider ?? '?'),
          ` (${s.alg ?? '?'}).`,
        )
      : h(
          'p',
          {},
          'Not verified',
          s.provider ? [' (provider ', h('code', {}, s.provider), ')'] : '',
          s.kid ? [', token kid ', h('code', {}, s.kid)] : '',
          '.',
        ),
  );
}

const OUTCOME_LABEL: Record<string, string> = {
  pass: 'passed',
  fail: 'failed',
  missing: 'missing claim',
  type_mismatch: 'type mismatch',
};

function renderTrace(result: Evaluation): HTMLElement {
  const roles = result.trace;
  return h(
    'div',
    { class: 'trace', 'data-testid': 'trace' },
    h('h3', {}, 'Trace'),
    roles.length === 0 ? h('p', { class: 'hint' }, 'No role was tried.') : null,
    ...roles.map((role) =>
      h(
        'section',
        { class: 'trace-role', 'data-role': role.role, 'aria-label': `role ${role.role}` },
        h(
          'h4',
          {},
          h('span', { class: `pill ${role.allowed ? 'allow' : 'deny'}` }, role.allowed ? 'allowed' : 'denied'),
          ' role ',
          h('code', {}, role.role),
        ),
        h(
          'ol',
          { class: 'steps' },
          ...role.steps.map((step) =>
            h(
              'li',
              { style: `--depth: ${step.depth}` },
              h(
                'button',
                {
                  type: 'button',
                  class: `step ${step.passed ? 'pass' : 'fail'}`,
                  'data-testid': 'trace-step',
                  'data-outcome': step.outcome,
                  'data-passed': String(step.passed),
                  'data-role': role.role,
                  'data-from': String(step.from),
                  'data-to': String(step.to),
                  'aria-label': `${OUTCOME_LABEL[step.outcome] ?? step.outcome}: ${step.text}, seen ${jsonText(step.seen)}. Show in the policy`,
                  title: `line ${step.line}, column ${step.column}: show in the policy`,
                  onclick: (event: Event) => {
                    for (const other of ui.result.querySelectorAll('.step[aria-current]'))
                      other.removeAttribute('aria-current');
                    (event.currentTarget as HTMLElement).setAttribute('aria-current', 'true');
                    reveal(policyView, step);
                  },
                },
                h('span', { class: 'icon', 'aria-hidden': 'true' }, step.passed ? '✓' : '✗'),
                h('code', { class: 'step-text' }, step.text),
                h('span', { class: 'outcome' }, OUTCOME_LABEL[step.outcome] ?? step.outcome),
                h(
                  'span',
                  { class: 'seen' },
                  h('span', { class: 'seen-label' }, 'seen '),
                  h('code', { 'data-testid': 'trace-seen' }, jsonText(step.seen)),
                ),
              ),
            ),
          ),
        ),
      ),
    ),
  );
}

// ---------------------------------------------------------------------------------------------
// Share link

async function updateShareLink(state: PlaygroundState, run: number): Promise<void> {
  try {
    const fragment = await encodeState(state);
    if (run !== runs) return; // a newer evaluation has its own link
    const url = new URL(window.location.href);
    url.hash = fragment;
    ui.shareLink.href = url.href;
    ui.shareLink.dataset.run = String(run);
    currentFragment = fragment;
    if (window.location.hash.slice(1) !== fragment) history.replaceState(null, '', url.href);
  } catch (error) {
    ui.toolbarStatus.textContent = `The share link could not be made: ${String(error)}`;
  }
}

async function restoreFromFragment(fragment: string): Promise<boolean> {
  try {
    const state = await decodeState(fragment);
    if (!state) return false;
    applyState(state);
    ui.examples.value = '';
    return true;
  } catch (error) {
    ui.toolbarStatus.textContent = `This link's state could not be read (${String(error)}); showing an example instead.`;
    return false;
  }
}

// ---------------------------------------------------------------------------------------------
// Examples

function fillExamples(): void {
  const groups = examples.map((file) => {
    const options =
      file.tests.length === 0
        ? [h('option', { value: `file:${file.name}`, 'data-file': file.name }, `${file.name} (no tests)`)]
        : file.tests.map((test, index) =>
            h(
              'option',
              {
                value: `test:${file.name}:${index}`,
                'data-file': file.name,
                'data-test': test.name,
                'data-expect': test.expect,
                'data-code': test.code ?? '',
              },
              `${test.name} (expects ${test.expect}${test.code ? ` ${test.code}` : ''})`,
            ),
          );
    return h('optgroup', { label: file.name + (file.error ? ` (${file.error})` : '') }, ...options);
  });
  ui.examples.replaceChildren(h('option', { value: '' }, 'Choose a policy and one of its tests…'), ...groups);
}

function loadExample(value: string): void {
  const [kind, name, index] = value.split(':');
  const file = examples.find((f) => f.name === name);
  if (!file) return;
  const test: InlineTest | undefined = kind === 'test' ? file.tests[Number(index)] : undefined;
  applyState({
    policy: file.source,
    mode: 'claims',
    claims: test?.claims ?? claimsView.state.doc.toString(),
    token: ui.token.value,
    jwks: ui.jwks.value,
    provider: '',
    now: test?.now === null || test?.now === undefined ? '' : String(test.now),
    role: test?.role ?? '',
  });
  ui.examples.value = value;
  runNow();
}

function defaultExample(): string {
  const file = examples.find((f) => f.name === 'gitlab.cg' && f.tests.length) ?? examples.find((f) => f.tests.length);
  return file ? `test:${file.name}:0` : examples[0] ? `file:${examples[0].name}` : '';
}

// ---------------------------------------------------------------------------------------------
// Start

function userChanged(): void {
  if (loading) return;
  ui.examples.value = '';
  schedule();
}

async function start(): Promise<void> {
  await loadEngine();
  ui.version.textContent = `engine ${version()}`;

  policyView = createPolicyEditor(byId('policy-editor'), userChanged);
  claimsView = createClaimsEditor(byId('claims-editor'), userChanged);
  claimsView.contentDOM.setAttribute('aria-labelledby', 'claims-label');

  examples = exampleFiles();
  fillExamples();

  ui.examples.addEventListener('change', () => {
    if (ui.examples.value) loadExample(ui.examples.value);
  });
  for (const input of [ui.token, ui.jwks, ui.now]) input.addEventListener('input', userChanged);
  for (const select of [ui.role, ui.provider]) select.addEventListener('change', userChanged);
  for (const radio of ui.modes) {
    radio.addEventListener('change', () => {
      showMode();
      userChanged();
    });
  }
  ui.nowPin.addEventListener('click', () => {
    ui.now.value = String(Math.floor(Date.now() / 1000));
    userChanged();
  });
  ui.nowClear.addEventListener('click', () => {
    ui.now.value = '';
    userChanged();
  });
  ui.formatButton.addEventListener('click', () => {
    const result = format(policyView.state.doc.toString());
    if (result.ok) {
      setText(policyView, result.formatted);
      ui.toolbarStatus.textContent = 'Formatted.';
    } else {
      ui.toolbarStatus.textContent = 'The policy does not parse, so it cannot be formatted.';
    }
  });
  ui.copyLink.addEventListener('click', async () => {
    if (ui.result.getAttribute('aria-busy') === 'true') runNow();
    await updateShareLink(currentState(), runs);
    try {
      await navigator.clipboard.writeText(ui.shareLink.href);
      ui.toolbarStatus.textContent = 'Link copied.';
    } catch {
      ui.toolbarStatus.textContent = 'Copy the link from “Link to this state”.';
    }
  });
  window.addEventListener('hashchange', async () => {
    const fragment = window.location.hash.slice(1);
    if (fragment && fragment !== currentFragment && (await restoreFromFragment(fragment))) runNow();
  });

  const restored = window.location.hash.length > 1 && (await restoreFromFragment(window.location.hash));
  if (restored) {
    runNow();
  } else {
    const value = defaultExample();
    if (value) loadExample(value);
    else runNow();
  }
  document.body.dataset.ready = 'true';
}

start().catch((error: unknown) => {
  console.error(error);
  ui.version.textContent = 'the engine did not load';
  fill(ui.result, h('div', { class: 'eval-error', role: 'alert' }, `The engine could not start: ${String(error)}`));
});
