// `node --import ./bench/lib/trace-imports.mjs --import tsx build.ts …` records the modules loaded:
// ES modules through a resolution hook (trace-hooks.mjs, in the loader thread), CommonJS modules
// (require, createRequire) by wrapping the CommonJS resolver, which those hooks do not see.
import fs from 'node:fs';
import { createRequire, register } from 'node:module';

register('./trace-hooks.mjs', import.meta.url);

const Module = createRequire(import.meta.url)('node:module');
const resolveFilename = Module._resolveFilename;
// Files the engine evaluates itself (engine/compiled.ts: the compiled engine, and the fast-glob
// and picomatch bundled beside it) pass through vm.compileFunction, which neither hook sees.
const vm = createRequire(import.meta.url)('node:vm');
const compileFunction = vm.compileFunction;
vm.compileFunction = function (code, params, options) {
  if (process.env.HUBMAKE_TRACE_FILE && options?.filename) fs.appendFileSync(process.env.HUBMAKE_TRACE_FILE, `${options.filename}\n`);
  return compileFunction.call(this, code, params, options);
};
Module._resolveFilename = function (...args) {
  const f = resolveFilename.apply(this, args);
  if (process.env.HUBMAKE_TRACE_FILE) fs.appendFileSync(process.env.HUBMAKE_TRACE_FILE, `${f}\n`);
  return f;
};
