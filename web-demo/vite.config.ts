import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vite';

// The repository root: the examples are read from ../policies at build time (src/examples.ts).
const repoRoot = fileURLToPath(new URL('..', import.meta.url));

export default defineConfig({
  // Relative asset URLs: dist/ works from any path (a subdirectory, a file server, a CI artifact).
  base: './',
  build: {
    target: 'es2022',
    // The engine is one .wasm file; it is fetched, never inlined as base64.
    assetsInlineLimit: (file) => (file.endsWith('.wasm') ? false : undefined),
    chunkSizeWarningLimit: 1500,
  },
  server: {
    host: '127.0.0.1',
    fs: { allow: [repoRoot] },
  },
  preview: {
    host: '127.0.0.1',
  },
});
