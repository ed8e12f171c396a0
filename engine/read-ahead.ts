// Big files can be read by a worker thread into a ring of shared buffers while this thread hashes
// the ones before, so that a file the page cache does not hold costs about max(read, hash) rather
// than read + hash: a dataset on a disk or network file system that reads near hashing speed is
// hashed up to twice as fast. A file the page cache holds is hashed faster on one thread (the
// bytes then cross from one core's cache to the other's: 1 GiB 750 against 660 ms on a 2-core
// Xeon), so the hasher hands a file over only once its first reads prove slow (engine/hash.ts).
// The worker reads through the hasher's own descriptor at explicit offsets: the same file, from
// where the hasher stopped. The hashing stays on this thread, where the stat cache and the rest of
// the build expect it, and stays synchronous: this thread waits on the ring with Atomics.wait,
// never on the event loop.
import { Worker } from 'node:worker_threads';
import crypto from 'node:crypto';

/** Ring of SLOTS buffers of SLOT bytes: small enough to stay in cache between the read and the hash. */
const SLOTS = 8;
const SLOT = 128 << 10;
const ERROR_BYTES = 1024;

// Control words (Int32): the request the main thread posted, the last the worker finished, slots
// filled and slots hashed for the current request, a request to abandon, the request whose read
// failed, the length of the error message, 1 once the worker runs, and the request's file
// descriptor and start offset (low and high 32 bits).
const REQ = 0;
const DONE = 1;
const HEAD = 2;
const TAIL = 3;
const CANCEL = 4;
const FAILED = 5;
const ERROR_LEN = 6;
const READY = 7;
const FD = 8;
const FROM_LO = 9;
const FROM_HI = 10;
const CONTROL = 11;
const LENS = CONTROL * 4;
const ERROR_AT = LENS + SLOTS * 4;
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
const errBuf = Buffer.from(shared, ${ERROR_AT}, ${ERROR_BYTES});
const data = Buffer.from(shared, ${DATA_AT}, ${SLOTS * SLOT});
let served = 0;
Atomics.store(c, ${READY}, 1);
Atomics.notify(c, ${READY});
for (;;) {
  Atomics.wait(c, ${REQ}, served);
  const req = Atomics.load(c, ${REQ});
  const fd = Atomics.load(c, ${FD});
  let at = (Atomics.load(c, ${FROM_HI}) >>> 0) * 2 ** 32 + (Atomics.load(c, ${FROM_LO}) >>> 0);
  try {
    for (let i = 0; ; i++) {
      let tail;
      while (i - (tail = Atomics.load(c, ${TAIL})) >= ${SLOTS} && Atomics.load(c, ${CANCEL}) !== req) Atomics.wait(c, ${TAIL}, tail, 50);
      if (Atomics.load(c, ${CANCEL}) === req) break;
      const s = i % ${SLOTS};
      const n = fs.readSync(fd, data, s * ${SLOT}, ${SLOT}, at);
      at += n;
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
   * Feeds `h` with the rest of the open file `fd`, from byte `from` to its end, read by the thread,
   * and returns the digest; a ReadAheadError when a read failed. Undefined, with `h` untouched,
   * when the thread is not running: the caller reads on from `from` itself. `fd` stays open until
   * this returns (the thread is done with it by then).
   */
  finish(fd: number, from: number, h: crypto.Hash): string | undefined {
    if (this.dead || !this.ready()) return undefined;
    const c = this.c;
    const req = ++this.req;
    Atomics.store(c, FD, fd);
    Atomics.store(c, FROM_LO, from % 2 ** 32);
    Atomics.store(c, FROM_HI, Math.floor(from / 2 ** 32));
    Atomics.store(c, HEAD, 0);
    Atomics.store(c, TAIL, 0);
    Atomics.store(c, REQ, req);
    Atomics.notify(c, REQ);
    try {
      for (let i = 0; ; i++) {
        let head;
        while ((head = Atomics.load(c, HEAD)) <= i) {
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
      // The ring is reused by the next file, and the caller closes fd: wait until the worker has let go.
      Atomics.store(c, CANCEL, req);
      Atomics.notify(c, TAIL);
      for (let d; (d = Atomics.load(c, DONE)) !== req; ) Atomics.wait(c, DONE, d, 1000);
    }
  }
}

/**
 * Whether the rest of a file is better read by the thread, after the hasher's own first reads:
 * when reading took as long as hashing, the overlap saves more than the hand-over of every byte
 * from one core to the other costs (see the top of this file). A file the page cache holds read
 * in 0.45-0.6 of its hashing time on the Xeon VM, so a threshold of one half handed such files
 * over in some processes and not others (a review's finding); the disk's first 8 MiB took 2.6x.
 */
export function readAheadPays(readMs: number, hashMs: number): boolean {
  return readMs >= hashMs;
}
