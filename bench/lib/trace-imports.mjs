// `node --import ./bench/lib/trace-imports.mjs --import tsx build.ts …` records the modules loaded.
import { register } from 'node:module';

register('./trace-hooks.mjs', import.meta.url);
