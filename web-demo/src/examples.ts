// The examples are the repository's own policies/*.cg, read at build time: Vite inlines each
// file's text into the bundle, so the playground offers exactly the files that `claimgate test
// policies/` runs, never a copy. Their inline tests are listed by the engine itself (`tests`).

import { inlineTests, type InlineTest } from './engine';

const files = import.meta.glob('../../policies/*.cg', {
  query: '?raw',
  import: 'default',
  eager: true,
}) as Record<string, string>;

export interface ExampleFile {
  /** The file name, e.g. `gitlab.cg`. */
  name: string;
  source: string;
  tests: InlineTest[];
  /** Why the tests could not be listed, if they could not. */
  error: string | null;
}

/** Every policies/*.cg file, in name order, with its inline tests. Needs the engine loaded. */
export function exampleFiles(): ExampleFile[] {
  return Object.entries(files)
    .map(([path, source]) => {
      const name = path.slice(path.lastIndexOf('/') + 1);
      const listed = inlineTests(source);
      return listed.ok
        ? { name, source, tests: listed.tests, error: null }
        : { name, source, tests: [], error: listed.error };
    })
    .sort((a, b) => a.name.localeCompare(b.name));
}
