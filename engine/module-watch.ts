// The watch over one evaluation of the targets module (engine/module-record.ts says what a
// record is and why): what it patches while the module is imported and run, and its key computed,
// and how what it saw becomes a record. Everything is put back by stop().
import crypto from 'node:crypto';
import fs from 'node:fs';
import Module, { createRequire, register, syncBuiltinESMExports } from 'node:module';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { MessageChannel, type MessagePort } from 'node:worker_threads';
import { sha256 } from './fingerprint.ts';
import { errDigest, moduleContent, moduleStat, observe, osDigest, envAll, OS_FACTS, real, RECORD_VERSION, runtime, SETTLE_MS, statDigest, statErrDigest, direntsDigest, type ModuleRecord } from './module-record.ts';

/** One recording at a time in a process (see startRecording). */
let recording = false;

// The loader hook, on tsx's loader thread, registered once per process: between 'start' and 'stop'
// it reports every module it resolves and loads, in order, on its port. It answers each word on
// the same port: the answer to 'start' comes before any report of the window (the import starts
// only once it has arrived), the answer to 'stop' after every one (one port keeps its order).
const HOOK = `
let port, on = false;
export function initialize(d) {
  port = d.port;
  port.on('message', (m) => { on = m === 'start'; port.postMessage({ ack: m }); });
  port.unref();
}
export async function resolve(s, ctx, next) {
  // The path the specifier names, before symlinks and the loader's extension mapping: where it
  // leads (realpath) is recorded too, so a link pointed elsewhere, or a file that would now be
  // found first, is seen. A package's name is reported with the importer (its node_modules).
  let named, bare;
  if (['./', '../', '/', 'file:'].some((p) => s.startsWith(p))) {
    if (ctx.parentURL) try { named = new URL(s, ctx.parentURL).href; } catch {}
  } else if (s === 'node:process' || s === 'process') {
    // Its named exports (pid, ppid) are values read when its module is made, seen by no getter.
    if (on) port.postMessage({ processImport: true });
  } else if (!s.startsWith('node:') && !s.startsWith('data:')) bare = s;
  let r;
  try {
    r = await next(s, ctx);
  } catch (e) {
    // An import that fails (caught by the module) must be tried again if what it looked for appears.
    if (on) port.postMessage({ failed: s, named, bare, parent: ctx.parentURL });
    throw e;
  }
  if (on) port.postMessage({ resolved: r.url, named, bare, parent: ctx.parentURL });
  return r;
}
export async function load(url, ctx, next) {
  const r = await next(url, ctx);
  if (on) port.postMessage({ loaded: url });
  return r;
}
`;

type Report = { resolved?: string; loaded?: string; named?: string; bare?: string; parent?: string; failed?: string; processImport?: boolean; ack?: string };

/** The hook's port, and who listens now. */
interface Hook {
  port: MessagePort;
  listener?: (m: Report) => void;
}

/** null: it could not be registered. */
let hook: Hook | null | undefined;

function loaderHook(): Hook | undefined {
  if (hook === undefined) {
    try {
      const { port1, port2 } = new MessageChannel();
      register(`data:text/javascript,${encodeURIComponent(HOOK)}`, { data: { port: port2 }, transferList: [port2 as unknown as MessagePort] });
      const h: Hook = { port: port1 as unknown as MessagePort };
      port1.on('message', (m: Report) => h.listener?.(m));
      port1.unref();
      hook = h;
    } catch {
      hook = null;
    }
  }
  return hook ?? undefined;
}

/** Says a word to the hook; true once it answered (within 2 s: the timer also keeps the process alive meanwhile). */
function tell(h: Hook, word: 'start' | 'stop', acks: Map<string, () => void>): Promise<boolean> {
  return new Promise((resolve) => {
    const t = setTimeout(() => {
      acks.delete(word);
      resolve(false);
    }, 2000);
    acks.set(word, () => {
      clearTimeout(t);
      resolve(true);
    });
    h.port.postMessage(word);
  });
}

/** A watch over one evaluation: start() before the import, stop() after the key. */
export interface Recorder {
  /** Runs the engine's own work inside the watch (reading the module's sources for its hash) unwatched. */
  unwatched<T>(fn: () => T): T;
  /**
   * Files the engine read for the module's hash, which the key holds (an import inside a function
   * not run yet, a type-only import), and the paths it looked for them at.
   */
  hashed(files: string[], probed: string[]): void;
  /** The record, or why there is none. */
  stop(): Promise<{ record: ModuleRecord } | { refused: string }>;
}

/**
 * Starts watching. `root`: npm's node_modules/.package-lock.json there is recorded too. Everything
 * patched is put back by stop(), which must be called (finally) whatever the evaluation did.
 */
export async function startRecording(root: string, invocation: string, settleMs = SETTLE_MS): Promise<Recorder> {
  // The watch patches the process: two at once (main() called twice in one process) would wrap
  // each other's patches and put them back out of order.
  if (recording) return { unwatched: (fn) => fn(), hashed: () => {}, stop: async () => ({ refused: 'another evaluation is being recorded in this process' }) };
  recording = true;
  const started = Date.now();
  let refused: string | undefined;
  // ES modules: the loader hook's reports (set up before anything is patched: it makes a channel).
  const h = loaderHook();
  const acks = new Map<string, () => void>();
  const resolved = new Set<string>();
  const loaded = new Set<string>();
  const named = new Set<string>();
  // What each named path and each package specifier resolved to, to be found again where they lead
  // at the end (a link in the middle of the path repointed meanwhile leads elsewhere).
  const namedTo: Array<[string, string]> = [];
  const packageTo: Array<[string, string, string]> = [];
  let failedBare: string | undefined;
  const fromFile = (u: string | undefined) => (u?.startsWith('file:') ? fileURLToPath(u) : undefined);
  let processImport = false;
  // Reports count from this window's 'start' answer on: a late one of a window whose 'stop' was
  // not answered in time comes before it.
  let opened = false;
  const listen = (m: Report) => {
    if (m.ack) {
      if (m.ack === 'start') opened = true;
      acks.get(m.ack)?.();
      acks.delete(m.ack);
      return;
    }
    if (!opened) return;
    if (m.processImport) processImport = true;
    if (m.resolved) resolved.add(m.resolved);
    const n = fromFile(m.named);
    if (n) named.add(n);
    const parent = fromFile(m.parent);
    const to = fromFile(m.resolved);
    if (to && n) namedTo.push([n, to]);
    if (to && m.bare && parent && !m.bare.startsWith('#')) packageTo.push([path.dirname(parent), m.bare, to]);
    if (m.failed !== undefined && m.bare) failedBare ??= m.bare;
    if (m.loaded) loaded.add(m.loaded);
  };
  if (!h) refused = 'no loader hook';
  else {
    h.listener = listen;
    if (!(await tell(h, 'start', acks))) refused = 'the loader hook did not answer';
  }
  const req = createRequire(import.meta.url);
  const seen: Array<[string, string, string]> = [];
  const output: Array<[number, string]> = [];
  let on = true;
  // Inside a tracked call: the calls it makes itself (readFileSync opens, reads and closes through
  // fs's own exports) are part of it.
  let inside = 0;
  const refuse = (why: string) => {
    if (on && inside === 0) refused ??= why;
  };
  // (From inside a tracked call, whose own calls are otherwise not judged.)
  const refuseNow = (why: string) => {
    if (on) refused ??= why;
  };
  const note = (kind: string, p: string, digest: string) => {
    if (on && inside === 0) seen.push([kind, p, digest]);
  };
  const restore: Array<() => void> = [];
  const patch = <T extends object>(obj: T, name: string, wrap: (orig: (...a: unknown[]) => unknown) => (...a: unknown[]) => unknown) => {
    const o = obj as Record<string, unknown>;
    const d = Object.getOwnPropertyDescriptor(o, name);
    // Inherited (a stream's write), or a plain value: patched on the object itself.
    const orig = d ? (d.get ? d.get.call(o) : d.value) : o[name];
    if (typeof orig !== 'function') return;
    const w = wrap(orig as (...a: unknown[]) => unknown);
    // Keep what callers look up on the function (realpathSync.native, promisify.custom).
    // (A Proxy has them already through its target.)
    for (const k of Reflect.ownKeys(orig)) if (!(k in w)) (w as unknown as Record<PropertyKey, unknown>)[k] = (orig as unknown as Record<PropertyKey, unknown>)[k];
    // Cannot be replaced (none of the calls watched are such).
    if (d && !d.configurable && !d.writable) return;
    Object.defineProperty(o, name, { configurable: true, enumerable: d?.enumerable ?? true, writable: true, value: w });
    restore.push(() => {
      // Replaced meanwhile (a package the module loaded wrapped it): theirs stays, over ours,
      // which passes every call through once the watch is over.
      if (o[name] !== w) return;
      if (d) Object.defineProperty(o, name, d);
      else delete o[name];
    });
  };
  // A call that refuses the record, then does what it did.
  const refuseCall = (obj: object, name: string, label: string) =>
    patch(obj, name, (orig) => function (this: unknown, ...a: unknown[]) {
      refuse(label);
      return orig.apply(this, a);
    });
  const refusing = (obj: object, label: string, keep: (name: string) => boolean = () => false) => {
    for (const name of Object.keys(obj)) {
      const v = (obj as Record<string, unknown>)[name];
      if (typeof v !== 'function' || keep(name)) continue;
      // A class (Worker, Socket, ReadStream) refuses when constructed or called.
      if (/^[A-Z]/.test(name)) patch(obj, name, (orig) => new Proxy(orig, {
        construct(t, a, nt) {
          refuse(`new ${label}.${name}`);
          return Reflect.construct(t, a, nt);
        },
        apply(t, self, a) {
          refuse(`${label}.${name}`);
          return Reflect.apply(t, self, a);
        },
      }));
      else refuseCall(obj, name, `${label}.${name}`);
    }
  };
  // Joined to the working directory as the kernel would, without removing `..` by its text (the
  // kernel follows a symlinked directory before `..`).
  const cwd = process.cwd();
  const pathOf = (p: unknown): string | undefined => {
    const text = typeof p === 'string' ? p : Buffer.isBuffer(p) ? p.toString() : p instanceof URL && p.protocol === 'file:' ? fileURLToPath(p) : undefined;
    if (text === undefined || text === '' || text.includes('\0')) return undefined;
    return path.isAbsolute(text) ? text : `${cwd}/${text}`;
  };
  // A tracked call: noted with the digest of what it returned (or threw), which observe() gives
  // again by making the same call.
  type Run = (orig: (...a: unknown[]) => unknown, a: unknown[]) => { value: unknown; digest: string };
  const plain = (digest: (r: unknown) => string): Run => (orig, a) => {
    const value = orig.apply(fs, a);
    return { value, digest: digest(value) };
  };
  const tracked = (name: string, kindOf: (a: unknown[]) => string | undefined, run: Run, target: object = fs) =>
    patch(target, name, (orig) => function (...a: unknown[]) {
      if (inside > 0) return orig.apply(fs, a);
      const p = pathOf(a[0]);
      const kind = p === undefined ? undefined : kindOf(a);
      if (kind === undefined || p === undefined) {
        refuse(`fs.${name} of ${typeof a[0] === 'number' ? 'a descriptor' : 'an unusual path or option'}`);
        return orig.apply(fs, a);
      }
      let r: { value: unknown; digest: string };
      inside++;
      try {
        r = run(orig, a);
      } catch (e) {
        inside--;
        note(kind, p, kind === 's' || kind === 'l' ? statErrDigest(e) : errDigest(e));
        throw e;
      }
      inside--;
      note(kind, p, r.digest);
      return r.value;
    });
  const encodingOf = (o: unknown): BufferEncoding | undefined | false => {
    if (o === undefined || o === null) return undefined;
    if (typeof o === 'string') return o as BufferEncoding;
    if (typeof o === 'object') {
      const { encoding, flag } = o as { encoding?: BufferEncoding | null; flag?: string };
      if (flag !== undefined && flag !== 'r') return false;
      return encoding ?? undefined;
    }
    return false;
  };
  // readFileSync: the bytes are read once, hashed, then decoded as asked.
  tracked('readFileSync', (a) => (encodingOf(a[1]) === false ? undefined : 'r'), (orig, a) => {
    // Only a regular file reads the same twice (not a FIFO, a terminal or /dev/stdin).
    const st = real.statSync(a[0] as fs.PathLike, { throwIfNoEntry: false });
    if (st && !st.isFile()) refuseNow(`fs.readFileSync of ${String(a[0])}, not a regular file`);
    const bytes = orig.call(fs, a[0]) as Buffer;
    const enc = encodingOf(a[1]) as BufferEncoding | undefined;
    return { value: enc ? bytes.toString(enc) : bytes, digest: sha256(bytes) };
  });
  tracked('existsSync', () => 'e', plain((r) => String(r)));
  const statKind = (k: string) => (a: unknown[]) => {
    const o = a[1] as { bigint?: boolean; throwIfNoEntry?: boolean } | undefined;
    return o?.bigint ? undefined : k;
  };
  tracked('statSync', statKind('s'), plain((r) => statDigest(r as fs.Stats | undefined)));
  tracked('lstatSync', statKind('l'), plain((r) => statDigest(r as fs.Stats | undefined)));
  tracked('readdirSync', (a) => {
    const o = a[1] as { withFileTypes?: boolean; recursive?: boolean; encoding?: string } | string | undefined;
    if (typeof o === 'string') return o === 'utf8' || o === 'utf-8' ? 'd' : undefined;
    if (o?.recursive || (o?.encoding && o.encoding !== 'utf8' && o.encoding !== 'utf-8')) return undefined;
    return o?.withFileTypes ? 'D' : 'd';
  }, plain((r) => direntsDigest(r as Array<string | fs.Dirent>)));
  // (Node's CommonJS loader passes an options object holding only its cache.)
  const utf8Only = (k: string) => (a: unknown[]) => {
    const o = a[1] as { encoding?: string } | string | undefined | null;
    const enc = typeof o === 'string' ? o : o?.encoding;
    return enc === undefined || enc === null || enc === 'utf8' || enc === 'utf-8' ? k : undefined;
  };
  tracked('realpathSync', utf8Only('p'), plain((r) => String(r)));
  // Its `.native` (copied onto the wrapper) gives the same answer for these purposes.
  tracked('native', utf8Only('p'), plain((r) => String(r)), fs.realpathSync);
  tracked('accessSync', (a) => `a${a[1] === undefined ? fs.constants.F_OK : Number(a[1])}`, plain(() => 'ok'));
  tracked('readlinkSync', utf8Only('k'), plain((r) => String(r)));
  // Every other fs call, sync or not, and fs/promises.
  refusing(fs, 'fs', (n) => n in real || n === 'realpath');
  refusing(fs.promises, 'fs.promises');
  // ...fs.realpath (async) and its `.native` too.
  refuseCall(fs, 'realpath', 'fs.realpath');
  refuseCall(fs.realpath, 'native', 'fs.realpath.native');
  for (const m of ['child_process', 'worker_threads', 'net', 'http', 'https', 'http2', 'dgram', 'dns', 'tls', 'inspector', 'cluster']) {
    refusing(req(m) as object, m);
  }
  // The clock and randomness.
  refuseCall(Date, 'now', 'Date.now');
  refuseCall(Math, 'random', 'Math.random');
  // (node:crypto's getRandomValues is a getter for Web Crypto's, patched on its prototype.)
  const webCrypto = Object.getPrototypeOf(crypto.webcrypto) as object;
  for (const n of ['getRandomValues', 'randomUUID']) refuseCall(webCrypto, n, `crypto.${n}`);
  const subtle = Object.getPrototypeOf(crypto.webcrypto.subtle) as object;
  for (const n of Object.getOwnPropertyNames(subtle)) if (n !== 'constructor') refuseCall(subtle, n, `crypto.subtle.${n}`);
  // Keys, primes and Diffie-Hellman groups are random too; a new vm context has its own clock.
  refusing(crypto, 'crypto', (n) => !/^(generate|createDiffieHellman|createECDH|getDiffieHellman|DiffieHellman|ECDH)/.test(n));
  refusing(req('vm') as object, 'vm');
  for (const n of ['now', 'mark', 'measure', 'timerify', 'eventLoopUtilization', 'getEntries', 'getEntriesByName', 'getEntriesByType', 'toJSON']) refuseCall(performance, n, `performance.${n}`);
  const watchedGetter = (obj: object, label: string, name: string, from: object = obj) => {
    const d = Object.getOwnPropertyDescriptor(from, name);
    if (!d?.configurable) return;
    const own = Object.getOwnPropertyDescriptor(obj, name);
    Object.defineProperty(obj, name, { configurable: true, enumerable: d.enumerable ?? false, get() {
      refuse(`${label}.${name}`);
      return d.get ? d.get.call(obj) : d.value;
    } });
    restore.push(() => {
      if (own) Object.defineProperty(obj, name, own);
      else delete (obj as Record<string, unknown>)[name];
    });
  };
  for (const n of ['timeOrigin', 'nodeTiming']) watchedGetter(performance, 'performance', n, Object.getPrototypeOf(performance) as object);
  for (const n of ['pid', 'ppid']) watchedGetter(process, 'process', n);
  for (const n of ['uptime', 'cpuUsage', 'resourceUsage', 'memoryUsage', 'constrainedMemory', 'availableMemory', 'umask']) refuseCall(process, n, `process.${n}`);
  // Intl formats the present when given no date; `format` is a getter of a bound function.
  const dtf = Intl.DateTimeFormat.prototype;
  const fmt = Object.getOwnPropertyDescriptor(dtf, 'format');
  if (fmt?.get && fmt.configurable) {
    const get = fmt.get;
    Object.defineProperty(dtf, 'format', { ...fmt, get(this: Intl.DateTimeFormat) {
      const f = get.call(this) as (d?: unknown) => string;
      return (d?: unknown) => {
        if (d === undefined) refuse('Intl.DateTimeFormat#format of the present');
        return f(d);
      };
    } });
    restore.push(() => Object.defineProperty(dtf, 'format', fmt));
  }
  patch(dtf, 'formatToParts', (orig) => function (this: unknown, ...a: unknown[]) {
    if (a[0] === undefined) refuse('Intl.DateTimeFormat#formatToParts of the present');
    return orig.apply(this, a);
  });
  for (const n of ['randomBytes', 'randomUUID', 'randomInt', 'randomFill', 'randomFillSync']) refuseCall(crypto, n, `crypto.${n}`);
  patch(process, 'hrtime', (orig) => Object.assign(function (this: unknown, ...a: unknown[]) {
    refuse('process.hrtime');
    return orig.apply(this, a);
  }, { bigint: (...a: unknown[]) => (refuse('process.hrtime'), (orig as unknown as { bigint: (...b: unknown[]) => unknown }).bigint(...a)) }));
  for (const n of ['binding', '_linkedBinding', 'dlopen', 'kill', 'chdir', 'abort', 'exit', 'reallyExit', 'openStdin', 'setUncaughtExceptionCaptureCallback']) refuseCall(process, n, `process.${n}`);
  // Standard input is read through no fs call that could be made again. Touching process.stdin
  // is not reading it (the ES module facade of node:process reads every export): stop() looks at
  // whether the stream was read or set flowing.
  const stdinDesc = Object.getOwnPropertyDescriptor(process, 'stdin');
  let stdinTouched = false;
  if (stdinDesc?.get && stdinDesc.configurable) {
    const get = stdinDesc.get;
    Object.defineProperty(process, 'stdin', { ...stdinDesc, get() {
      if (on) stdinTouched = true;
      // (Making the stream, a socket or a file stream, is not reading it.)
      inside++;
      try {
        return get.call(process);
      } finally {
        inside--;
      }
    } });
    restore.push(() => Object.defineProperty(process, 'stdin', stdinDesc));
  }
  patch(process, 'cwd', (orig) => function (this: unknown) {
    const c = orig.call(this) as string;
    note('cwd', '', c);
    return c;
  });
  const RealDate = Date;
  const WatchedDate = new Proxy(RealDate, {
    construct(target, args, newTarget) {
      if (args.length === 0) refuse('new Date()');
      return Reflect.construct(target, args, newTarget);
    },
    apply(target, self, args) {
      refuse('Date()');
      return Reflect.apply(target, self, args);
    },
  });
  globalThis.Date = WatchedDate;
  // (new (new Date(0).constructor)() is the present too.)
  RealDate.prototype.constructor = WatchedDate;
  restore.push(() => {
    globalThis.Date = RealDate;
    RealDate.prototype.constructor = RealDate;
  });
  const realFetch = globalThis.fetch;
  if (typeof realFetch === 'function') {
    globalThis.fetch = ((...a: Parameters<typeof fetch>) => (refuse('fetch'), realFetch(...a))) as typeof fetch;
    restore.push(() => {
      globalThis.fetch = realFetch;
    });
  }
  for (const n of OS_FACTS) patch(os, n, (orig) => function (this: unknown, ...a: unknown[]) {
    const r = orig.apply(this, a);
    if (a.length) refuse(`os.${n} with arguments`);
    else note('os', n, osDigest(n, r));
    return r;
  });
  refusing(os, 'os', (n) => (OS_FACTS as readonly string[]).includes(n));
  // The environment and the command line, through proxies that note what is looked at and refuse
  // a change.
  const watched = <T extends object>(target: T, label: string, read: (t: T, k: string | symbol) => void, readAll: (t: T) => void): T =>
    new Proxy(target, {
      get(t, k) {
        read(t, k);
        return Reflect.get(t, k);
      },
      has(t, k) {
        read(t, k);
        return Reflect.has(t, k);
      },
      getOwnPropertyDescriptor(t, k) {
        read(t, k);
        return Reflect.getOwnPropertyDescriptor(t, k);
      },
      ownKeys(t) {
        readAll(t);
        return Reflect.ownKeys(t);
      },
      set(t, k, v) {
        refuse(`a change to ${label}`);
        return Reflect.set(t, k, v);
      },
      deleteProperty(t, k) {
        refuse(`a change to ${label}`);
        return Reflect.deleteProperty(t, k);
      },
      defineProperty(t, k, d) {
        refuse(`a change to ${label}`);
        return Reflect.defineProperty(t, k, d);
      },
    });
  const realEnv = process.env;
  process.env = watched(realEnv, 'process.env', (t, k) => {
    if (typeof k === 'string') note('env', k, t[k] ?? '\0unset');
  }, (t) => note('envall', '', envAll(t)));
  const realArgv = process.argv;
  const argvRead = (t: string[]) => note('argv', '', JSON.stringify(t.slice(2)));
  process.argv = watched(realArgv, 'process.argv', argvRead, argvRead);
  restore.push(() => {
    process.env = realEnv;
    process.argv = realArgv;
  });
  // What it writes is kept for the builds that skip it.
  for (const [fd, stream] of [[1, process.stdout], [2, process.stderr]] as const) {
    patch(stream, 'write', (orig) => function (this: unknown, ...a: unknown[]) {
      if (typeof a[0] === 'string' && (typeof a[1] !== 'string' || a[1] === 'utf8' || a[1] === 'utf-8')) {
        if (on) output.push([fd, a[0]]);
      } else refuse('a write of bytes to stdout or stderr');
      return orig.apply(this, a);
    });
  }
  // CommonJS: every require resolved; one that hands out a module loaded before the watch refuses.
  const cache = req.cache;
  const before = new Set(Object.keys(cache));
  const required = new Set<string>();
  const M = Module as unknown as { _resolveFilename: (...a: unknown[]) => string; isBuiltin: (s: string) => boolean };
  patch(M, '_resolveFilename', (orig) => function (this: unknown, ...a: unknown[]) {
    const [request, parent] = a as [unknown, { filename?: string; path?: string } | undefined];
    const mine = on && inside === 0 && typeof request === 'string' && !M.isBuiltin(request);
    const dir = parent?.filename ? path.dirname(parent.filename) : parent?.path ?? cwd;
    const relative = mine && (request === '.' || request === '..' || ['./', '../', '/'].some((p) => (request as string).startsWith(p)));
    const n = relative ? (path.isAbsolute(request as string) ? (request as string) : `${dir}/${request as string}`) : undefined;
    if (n) named.add(n);
    let f: string;
    try {
      f = orig.apply(this, a) as string;
    } catch (e) {
      if (mine && !relative) failedBare ??= request as string;
      throw e;
    }
    if (mine) {
      required.add(f);
      if (n) namedTo.push([n, f]);
      else if (!(request as string).startsWith('#')) packageTo.push([dir, request as string, f]);
    }
    return f;
  });
  // A CommonJS loader's own work (tsx reads, transforms and caches a file; its cache looks at the
  // clock) is not the module's: only the module's code, which _compile runs, is watched.
  const MP = (Module as unknown as { prototype: object }).prototype;
  patch(MP, '_compile', (orig) => function (this: unknown, ...a: unknown[]) {
    const saved = inside;
    inside = 0;
    try {
      return orig.apply(this, a);
    } finally {
      inside = saved;
    }
  });
  const exts = (Module as unknown as { _extensions: Record<string, unknown> })._extensions;
  for (const ext of Object.keys(exts)) patch(exts, ext, (orig) => function (this: unknown, ...a: unknown[]) {
    if (ext === '.node') refuse('a native addon');
    inside++;
    try {
      return orig.apply(this, a);
    } finally {
      inside--;
    }
  });
  // Named imports of built-ins see the patches (this reads every export once: not the module's doing).
  inside++;
  syncBuiltinESMExports();
  inside--;
  const extraFiles = new Set<string>();
  const extraProbes = new Set<string>();
  return {
    unwatched<T>(fn: () => T): T {
      inside++;
      try {
        return fn();
      } finally {
        inside--;
      }
    },
    hashed(files: string[], probed: string[]) {
      for (const f of files) extraFiles.add(f);
      for (const p of probed) extraProbes.add(p);
    },
    async stop() {
      const stdinRead = stdinTouched && (() => {
        const si = process.stdin as NodeJS.ReadStream & { readableDidRead?: boolean };
        return !!si.readableDidRead || si.readableFlowing !== null || si.listenerCount('data') > 0 || si.listenerCount('readable') > 0;
      })();
      if (stdinRead) refuse('a read of standard input');
      on = false;
      for (const r of restore.reverse()) r();
      syncBuiltinESMExports();
      // The hook's answer comes after all its reports. (The next recording may begin once it is in.)
      if (h) {
        if (!(await tell(h, 'stop', acks))) refused ??= 'the loader hook did not answer';
        if (h.listener === listen) h.listener = undefined;
      }
      recording = false;
      if (refused) return { refused };
      if (processImport) return { refused: 'an import of node:process (its pid and ppid are read unseen)' };
      if (failedBare !== undefined) return { refused: `an import of '${failedBare}' failed (where a package would appear is not watched)` };
      const files = new Set<string>();
      for (const u of resolved) {
        if (!u.startsWith('file:')) continue;
        const f = fileURLToPath(u);
        if (!loaded.has(u) || before.has(f)) return { refused: `${f} was resolved but not loaded while the module was evaluated (it was loaded before, or only resolved)` };
      }
      for (const u of loaded) if (u.startsWith('file:')) files.add(fileURLToPath(u));
      for (const f of required) {
        if (before.has(f)) return { refused: `${f} was loaded before the evaluation` };
        files.add(f);
      }
      for (const f of Object.keys(cache)) if (!before.has(f)) files.add(f);
      for (const f of extraFiles) files.add(f);
      files.add(path.join(root, 'node_modules', '.package-lock.json'));
      // What decides how a module resolves and what it is: every package.json above a module
      // ("type", "imports", "exports"), and every tsconfig.json above the working directory (tsx
      // maps its "paths"); a tsconfig that extends one elsewhere is followed where it is relative.
      const above = (dir: string, name: string): string[] => {
        const out: string[] = [];
        for (let d = dir; ; d = path.dirname(d)) {
          out.push(path.join(d, name));
          if (path.dirname(d) === d) return out;
        }
      };
      const config = new Set<string>();
      for (const f of files) for (const pj of above(path.dirname(f), 'package.json')) config.add(pj);
      const tsconfigs = above(cwd, 'tsconfig.json');
      for (let i = 0; i < tsconfigs.length && i < 64; i++) {
        const t = tsconfigs[i]!;
        config.add(t);
        let text: string;
        try {
          text = real.readFileSync(t, 'utf8') as string;
        } catch {
          continue;
        }
        for (const m of text.matchAll(/"extends"\s*:\s*(\[[^\]]*\]|"[^"]*")/g)) {
          for (const e of m[1]!.match(/"[^"]*"/g) ?? []) {
            const spec = e.slice(1, -1);
            if (!spec.startsWith('.') && !path.isAbsolute(spec)) return { refused: `${t} extends '${spec}', a package (not watched)` };
            // As tsx's get-tsconfig looks: the path as given, with .json, or a directory's tsconfig.json.
            const base = path.resolve(path.dirname(t), spec);
            tsconfigs.push(base, `${base}.json`, path.join(base, 'tsconfig.json'));
          }
        }
      }
      // (Listed below: the directories of modules and of the paths looked at, not of these.)
      const listed = new Set([...files].map((f) => path.dirname(f)));
      for (const c of config) files.add(c);
      const modules: Array<[string, string, string]> = [];
      // Changed since just before the evaluation (or within a coarse timestamp's step of it): what
      // was evaluated may not be what is on disk now. Looked at without following a final link:
      // a link pointed elsewhere during the evaluation is recent too.
      const recent = (p: string): boolean => {
        try {
          const st = real.lstatSync(p);
          return Math.max(st.mtimeMs, st.ctimeMs) >= started - settleMs;
        } catch {
          return false; // absent: recorded as such
        }
      };
      for (const f of [...files].sort()) {
        if (recent(f)) return { refused: `${f} changed while or just before the module was evaluated` };
        modules.push(['m', f, `${moduleStat(f)} ${moduleContent(f)}`]);
      }
      // Where the loader looked: each named path as it is, and each module's directory and each
      // named path's (a file added there could be the one a specifier now resolves to: lib.ts
      // beside lib/index.ts); for each package, node_modules/<name> in the importer's directory
      // and every one above it (a link repointed, a package installed nearer).
      const looked = new Set([...named, ...extraProbes]);
      const dirs = new Set([...listed, ...[...looked].map((f) => path.dirname(f))]);
      for (const p of [...looked].sort()) {
        if (recent(p)) return { refused: `${p} changed while or just before the module was evaluated` };
        modules.push(['p', p, observe('p', p)]);
      }
      // (A "#" specifier is package.json "imports": the package.json files above hold it.)
      const lookups = new Set<string>();
      for (const [dir, spec] of packageTo) for (const nm of above(dir, 'node_modules')) lookups.add(path.join(nm, packageName(spec)));
      for (const p of [...lookups].sort()) modules.push(['p', p, observe('p', p)]);
      // Each specifier must still lead where it led. A relative one: the file its path names now
      // is the one loaded, or (an extension or index the loader added) lies in the directory the
      // path names. A package: the file loaded lies in the first node_modules/<name> found from
      // its importer up (a bare specifier a tsconfig "paths" mapped elsewhere is not followed).
      const realOr = (p: string): string | undefined => {
        try {
          return real.realpathSync(p);
        } catch {
          return undefined;
        }
      };
      const within = (dir: string | undefined, f: string) => dir !== undefined && (f === dir || f.startsWith(dir.endsWith('/') ? dir : `${dir}/`));
      for (const [n, to] of namedTo) {
        const now = realOr(n);
        const ok = now !== undefined ? now === to || within(now, to) : within(realOr(path.dirname(n)), to);
        if (!ok) return { refused: `${n} no longer leads to ${to} (a link on its path changed while the module was evaluated)` };
      }
      for (const [dir, spec, to] of packageTo) {
        const name = packageName(spec);
        const first = above(dir, 'node_modules').map((nm) => realOr(path.join(nm, name))).find((p) => p !== undefined);
        if (!within(first, to)) return { refused: `'${spec}' led to ${to}, outside node_modules/${name} (a path mapping, or a link changed while the module was evaluated)` };
      }
      for (const d of [...dirs].sort()) {
        if (recent(d)) return { refused: `${d} changed while or just before the module was evaluated` };
        modules.push(['D', d, observe('D', d)]);
      }
      const observed = once(seen);
      if (!observed) return { refused: 'a path or variable changed while the module was evaluated' };
      return { record: { v: RECORD_VERSION, invocation, runtime: runtime(), seen: [...modules, ...observed], output } };
    },
  };
}

/** The package a bare specifier names: `a` of `a/b`, `@s/a` of `@s/a/b`. */
function packageName(spec: string): string {
  return spec.split('/').slice(0, spec.startsWith('@') ? 2 : 1).join('/');
}

/** Each (kind, path) once; undefined when one was seen two ways (it changed during the evaluation). */
function once(seen: Array<[string, string, string]>): Array<[string, string, string]> | undefined {
  const out = new Map<string, [string, string, string]>();
  for (const s of seen) {
    const k = `${s[0]}\0${s[1]}`;
    const had = out.get(k);
    if (had && had[2] !== s[2]) return undefined;
    out.set(k, s);
  }
  return [...out.values()];
}
