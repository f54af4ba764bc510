// Runs the browser tests with node's test runner (spec output) and ends with one line,
// `N passed, M failed`, counting every test and subtest; exits 1 when any failed.

import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { run } from 'node:test';
import { spec } from 'node:test/reporters';

const dir = fileURLToPath(new URL('.', import.meta.url));
const files = readdirSync(dir)
  .filter((name) => name.endsWith('.test.mjs'))
  .map((name) => join(dir, name));

let passed = 0;
let failed = 0;
const stream = run({ files, concurrency: 1, timeout: 240_000 });
stream.on('test:pass', (event) => {
  if (event.details?.type !== 'suite' && !event.skip && !event.todo) passed += 1;
});
stream.on('test:fail', (event) => {
  if (event.details?.type !== 'suite') failed += 1;
});
// The line comes after the reporter's own summary: when its output has ended.
const report = stream.compose(new spec());
report.pipe(process.stdout, { end: false });
report.on('end', () => {
  process.stdout.write(`\n${passed} passed, ${failed} failed\n`);
  process.exitCode = failed > 0 || passed === 0 ? 1 : 0;
});
