// The engine: crates/claimgate-wasm compiled to WebAssembly (scripts/build-wasm.sh writes
// src/wasm/). Every wasm function takes text and answers one JSON document; this module parses
// the answers into the types below, which mirror crates/claimgate-wasm/src/api.rs.

import init, * as wasm from './wasm/claimgate_wasm.js';

/** Where something is in the policy: 1-based line/column and UTF-16 offsets `from`/`to`. */
export interface Location {
  line: number;
  column: number;
  end_line: number;
  end_column: number;
  from: number;
  to: number;
}

export interface Diagnostic extends Location {
  code: string;
  severity: 'error' | 'warning';
  message: string;
  label: string | null;
  help: string | null;
  related: { message?: string; line?: number; column?: number }[];
}

export interface CheckResult {
  ok: boolean;
  errors: number;
  warnings: number;
  diagnostics: Diagnostic[];
  rendered: string;
}

export interface Check extends Location {
  text: string;
  path: string | null;
  message: string | null;
}

export interface TraceStep extends Check {
  outcome: 'pass' | 'fail' | 'missing' | 'type_mismatch' | string;
  passed: boolean;
  seen: unknown;
  depth: number;
}

export interface TraceRole {
  role: string;
  allowed: boolean;
  steps: TraceStep[];
}

export interface TokenSettings {
  ttl: number | null;
  max_ttl: number | null;
  explicit_max_ttl: number | null;
  period: number | null;
  num_uses: number | null;
  bound_cidrs: string[];
  type: string | null;
  no_default_policy: boolean;
}

export interface Grant {
  role: string;
  identity: string;
  user: string | null;
  groups: string[];
  metadata: Record<string, string>;
  policies: string[];
  token: TokenSettings;
}

export interface Denial {
  code: string;
  message: string;
  role: string | null;
  condition: Check | null;
  actual: unknown;
  /** What the token had at the failing check, in words (for a group: what went wrong with it). */
  seen: string;
}

export interface Signature {
  verified: boolean;
  provider: string | null;
  kid: string | null;
  alg: string | null;
  key: string | null;
}

export interface Evaluation {
  ok: true;
  decision: 'allow' | 'deny';
  role: string | null;
  grant: Grant | null;
  denial: Denial | null;
  trace: TraceRole[];
  signature: Signature | null;
  now: number;
  time: { micros_per_decision: number; runs: number };
}

export interface Failure {
  ok: false;
  error: string;
  stage?: 'options' | 'policy' | 'input' | 'keys' | string;
  diagnostics?: Diagnostic[];
}

export interface EvaluateOptions {
  now?: string | null;
  role?: string | null;
  jwks?: string | null;
  provider?: string | null;
}

export interface Decoded {
  ok: true;
  header: Record<string, unknown> | null;
  payload: Record<string, unknown> | null;
  signature_bytes: number | null;
  problem: { code: string; message: string } | null;
}

export interface InlineTest extends Location {
  name: string;
  role: string | null;
  now: number | null;
  claims: string;
  expect: 'allow' | 'deny';
  code: string | null;
}

export type TestsResult = { ok: true; tests: InlineTest[] } | Failure;

let ready: Promise<void> | null = null;

/** Loads and instantiates the .wasm (once). */
export function loadEngine(): Promise<void> {
  ready ??= init({ module_or_path: new URL('./wasm/claimgate_wasm_bg.wasm', import.meta.url) }).then(() => undefined);
  return ready;
}

export function version(): string {
  return wasm.version();
}

export function check(source: string): CheckResult {
  return JSON.parse(wasm.check(source)) as CheckResult;
}

export function format(source: string): { ok: true; formatted: string } | Failure {
  return JSON.parse(wasm.format(source));
}

export function evaluate(source: string, input: string, options: EvaluateOptions): Evaluation | Failure {
  // Empty values are left out: the engine then uses its defaults (the clock, automatic role
  // selection, the role's provider).
  const given: Record<string, string> = {};
  for (const [name, value] of Object.entries(options)) {
    if (typeof value === 'string' && value.trim() !== '') given[name] = value;
  }
  return JSON.parse(wasm.evaluate(source, input, JSON.stringify(given)));
}

export function decode(token: string): Decoded | Failure {
  return JSON.parse(wasm.decode(token));
}

export function inlineTests(source: string): TestsResult {
  return JSON.parse(wasm.tests(source));
}
