// Big files are read by a worker thread into a ring of shared buffers while this thread hashes
// the ones before, so that a file the page cache does not hold costs about max(read, hash) rather
// than read + hash: a dataset on a disk or network file system that reads near hashing speed
// (~1.5 GB/s here) is hashed up to twice as fast. The hashing stays on this thread, where the
// stat cache and the rest of the build expect it, and stays synchronous: this thread waits on the
// ring with Atomics.wait, never on the event loop.
import { Worker } from 'node:worker_threads';
import crypto from 'node:crypto';

/** Ring of SLOTS buffers of SLOT bytes: small enough to stay in cache between the read and the hash. */
const SLOTS = 8;
const SLOT = 128 << 10;
const PATH_BYTES = 8192;
const ERROR_BYTES = 1024;

// Control words (Int32): the request the main thread posted, the last the worker finished, slots
// filled and slots hashed for the current request, a request to abandon, the request whose read
// failed, the lengths of the path and of the error message, the request the worker could not open
// (the main thread then opens the file itself, for the exact error), and 1 once the worker runs.
const REQ = 0;
const DONE = 1;
const HEAD = 2;
const TAIL = 3;
const CANCEL = 4;
const FAILED = 5;
const PATH_LEN = 6;
const ERROR_LEN = 7;
const UNOPENED = 8;
const READY = 9;
const CONTROL = 10;
const LENS = CONTROL * 4;
const PATH_AT = LENS + SLOTS * 4;
const ERROR_AT = PATH_AT + PATH_BYTES;
const DATA_AT = ERROR_AT + ERROR_BYTES;
const BYTES = DATA_AT + SLOTS * SLOT;

// CommonJS evaluated by the worker: the engine may be one bundled file, with no module of its own
// to point a worker at. It serves one request at a time, forever (the thread is unref'd).
const WORKER = `
const { workerData } = require('node:worker_threads');
const fs = require('node:fs');
const shared = workerData;
const c = new Int32Array(shared, 0, ${CONTROL});
const lens = new Int32Array(shared, ${LENS}, ${SLOTS});
const pathBuf = Buffer.from(shared, ${PATH_AT}, ${PATH_BYTES});
const errBuf = Buffer.from(shared, ${ERROR_AT}, ${ERROR_BYTES});
const data = Buffer.from(shared, ${DATA_AT}, ${SLOTS * SLOT});
let served = 0;
Atomics.store(c, ${READY}, 1);
Atomics.notify(c, ${READY});
for (;;) {
  Atomics.wait(c, ${REQ}, served);
  const req = Atomics.load(c, ${REQ});
  const file = pathBuf.toString('utf8', 0, Atomics.load(c, ${PATH_LEN}));
  let fd;
  try {
    // O_NONBLOCK: a FIFO must not block the reader forever. Anything but a regular file that
    // opens, or no file at all, is left to the main thread.
    try {
      fd = fs.openSync(file, fs.constants.O_RDONLY | fs.constants.O_NONBLOCK);
      if (!fs.fstatSync(fd).isFile()) throw new Error('not a regular file');
    } catch {
      Atomics.store(c, ${UNOPENED}, req);
      Atomics.notify(c, ${HEAD});
      continue;
    }
    for (let i = 0; ; i++) {
      let tail;
      while (i - (tail = Atomics.load(c, ${TAIL})) >= ${SLOTS} && Atomics.load(c, ${CANCEL}) !== req) Atomics.wait(c, ${TAIL}, tail, 50);
      if (Atomics.load(c, ${CANCEL}) === req) break;
      const s = i % ${SLOTS};
      const n = fs.readSync(fd, data, s * ${SLOT}, ${SLOT}, null);
      lens[s] = n;
      Atomics.store(c, ${HEAD}, i + 1);
      Atomics.notify(c, ${HEAD});
      if (n === 0) break;
    }
  } catch (e) {
    const m = Buffer.from(String(e && e.message || e)).subarray(0, ${ERROR_BYTES});
    m.copy(errBuf);
    Atomics.store(c, ${ERROR_LEN}, m.length);
    Atomics.store(c, ${FAILED}, req);
    Atomics.notify(c, ${HEAD});
  } finally {
    if (fd !== undefined) try { fs.closeSync(fd); } catch {}
    served = req;
    Atomics.store(c, ${DONE}, req);
    Atomics.notify(c, ${DONE});
  }
}
`;

/** A read of the file failed on the reader thread (its message as the read gave it). */
export class ReadAheadError extends Error {}

/** How long the first file waits for the thread to start before reading on this one. */
const START_MS = 10_000;

/** One reader thread per process, started by the first big file (its start costs ~40 ms). */
export class ReadAhead {
  private readonly shared = new SharedArrayBuffer(BYTES);
  private readonly c = new Int32Array(this.shared, 0, CONTROL);
  private readonly lens = new Int32Array(this.shared, LENS, SLOTS);
  private readonly data = Buffer.from(this.shared, DATA_AT, SLOTS * SLOT);
  private readonly worker: Worker;
  private req = 0;
  /** The thread did not start, or ended: files are read on the main thread from then on. */
  private dead = false;

  constructor() {
    // execArgv: the thread needs only fs, not the loaders (tsx) the build itself was started with.
    this.worker = new Worker(WORKER, { eval: true, workerData: this.shared, execArgv: [] });
    this.worker.unref();
    this.worker.on('error', () => (this.dead = true));
    this.worker.on('exit', () => (this.dead = true));
  }

  /** Waits for the thread to have started; false when it does not within START_MS. */
  private ready(): boolean {
    const end = Date.now() + START_MS;
    while (!this.dead && Atomics.load(this.c, READY) !== 1 && Date.now() < end) Atomics.wait(this.c, READY, 0, 50);
    if (Atomics.load(this.c, READY) !== 1) this.dead = true;
    return !this.dead;
  }

  /**
   * sha256 of the file's bytes, as read from start to end; a ReadAheadError when a read failed.
   * Undefined when the caller must read the file itself: the thread is not running, the path is
   * too long for the ring's header, or it could not be opened as a regular file (the caller's own
   * open then throws the exact error, code included).
   */
  sha256(abs: string): string | undefined {
    const path = Buffer.from(abs);
    if (path.length > PATH_BYTES || this.dead || !this.ready()) return undefined;
    const c = this.c;
    const req = ++this.req;
    path.copy(Buffer.from(this.shared, PATH_AT, PATH_BYTES));
    Atomics.store(c, PATH_LEN, path.length);
    Atomics.store(c, HEAD, 0);
    Atomics.store(c, TAIL, 0);
    Atomics.store(c, REQ, req);
    Atomics.notify(c, REQ);
    const h = crypto.createHash('sha256');
    try {
      for (let i = 0; ; i++) {
        let head;
        while ((head = Atomics.load(c, HEAD)) <= i) {
          if (Atomics.load(c, UNOPENED) === req) return undefined;
          if (Atomics.load(c, FAILED) === req) throw new ReadAheadError(Buffer.from(this.shared, ERROR_AT, Atomics.load(c, ERROR_LEN)).toString());
          Atomics.wait(c, HEAD, head, 1000);
        }
        const s = i % SLOTS;
        const n = this.lens[s]!;
        if (n === 0) break;
        h.update(this.data.subarray(s * SLOT, s * SLOT + n));
        Atomics.store(c, TAIL, i + 1);
        Atomics.notify(c, TAIL);
      }
      return h.digest('hex');
    } finally {
      // The ring is reused by the next file: wait until the worker has let go of this one.
      Atomics.store(c, CANCEL, req);
      Atomics.notify(c, TAIL);
      for (let d; (d = Atomics.load(c, DONE)) !== req; ) Atomics.wait(c, DONE, d, 1000);
    }
  }
}
