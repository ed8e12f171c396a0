// Module resolution hook (runs in the loader thread): appends every resolved URL to the file named
// by HUBMAKE_TRACE_FILE, so bench/lazy.ts can see which packages a build loaded.
import fs from 'node:fs';

export async function resolve(specifier, context, next) {
  const r = await next(specifier, context);
  if (process.env.HUBMAKE_TRACE_FILE) fs.appendFileSync(process.env.HUBMAKE_TRACE_FILE, `${r.url}\n`);
  return r;
}
