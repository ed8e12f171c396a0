// `node --import ./bench/lib/trace-imports.mjs --import tsx build.ts …` records the modules loaded:
// ES modules through a resolution hook (trace-hooks.mjs, in the loader thread), CommonJS modules
// (require, createRequire) by wrapping the CommonJS resolver, which those hooks do not see.
import fs from 'node:fs';
import { createRequire, register } from 'node:module';

register('./trace-hooks.mjs', import.meta.url);

const Module = createRequire(import.meta.url)('node:module');
const resolveFilename = Module._resolveFilename;
Module._resolveFilename = function (...args) {
  const f = resolveFilename.apply(this, args);
  if (process.env.HUBMAKE_TRACE_FILE) fs.appendFileSync(process.env.HUBMAKE_TRACE_FILE, `${f}\n`);
  return f;
};
