// Big files the page cache does not hold: a worker thread reads ahead of the hasher, so that the
// disk works while this thread hashes, and the hasher's own reads find the bytes in the page
// cache. A file then costs about max(read, hash) rather than read + hash.
//
// The thread only warms the page cache: it reads into a buffer of its own, which it throws away,
// and the hasher reads and hashes every byte itself, as it would without it. An earlier design
// handed the bytes over through a ring of shared buffers (1 MiB in flight in 128 KiB pieces): the
// bytes then crossed from one core's cache to the other's, and the disk saw small requests. On the
// Xeon VM, a 1 GiB file read cold (page cache dropped before each, three rounds interleaved,
// 2026-12-02): ring 2.08-2.32 s, no thread 1.74-2.32 s, openssl 2.15-2.26 s, this 1.41-1.67 s.
// It reads 1 MiB at a time and stays at most AHEAD bytes before the hasher, so that it never
// pushes out of the page cache what the hasher has yet to read.
//
// The worker reads through the hasher's own descriptor at explicit offsets, which leave the
// descriptor's position alone. Its read errors are its own business: the hasher's read of the
// same bytes meets them and reports them as it always does. The hashing stays synchronous on this
// thread; the worker never blocks it (only stop() waits, for the worker to let go of the descriptor).
import { Worker } from 'node:worker_threads';

const READ = 1 << 20;
const AHEAD = 64 << 20;

// Control words (Int32): the request posted, the last the worker finished, a request to stop,
// 1 once the worker runs, a counter bumped at each report of progress, the request's descriptor,
// its start offset and the hasher's position (low and high 32 bits each).
const REQ = 0;
const DONE = 1;
const CANCEL = 2;
const READY = 3;
const TICK = 4;
const FD = 5;
const FROM_LO = 6;
const FROM_HI = 7;
const POS_LO = 8;
const POS_HI = 9;
const CONTROL = 10;

// CommonJS evaluated by the worker: the engine may be one bundled file, with no module of its own
// to point a worker at. It serves one request at a time, forever (the thread is unref'd).
const WORKER = `
const { workerData } = require('node:worker_threads');
const fs = require('node:fs');
const c = new Int32Array(workerData, 0, ${CONTROL});
const buf = Buffer.allocUnsafe(${READ});
const at64 = (lo, hi) => (Atomics.load(c, hi) >>> 0) * 2 ** 32 + (Atomics.load(c, lo) >>> 0);
let served = 0;
Atomics.store(c, ${READY}, 1);
Atomics.notify(c, ${READY});
for (;;) {
  Atomics.wait(c, ${REQ}, served);
  const req = Atomics.load(c, ${REQ});
  const fd = Atomics.load(c, ${FD});
  let at = at64(${FROM_LO}, ${FROM_HI});
  try {
    while (Atomics.load(c, ${CANCEL}) !== req) {
      const tick = Atomics.load(c, ${TICK});
      if (at - at64(${POS_LO}, ${POS_HI}) > ${AHEAD}) { Atomics.wait(c, ${TICK}, tick, 50); continue; }
      const n = fs.readSync(fd, buf, 0, ${READ}, at);
      if (n === 0) break;
      at += n;
    }
  } catch {
    // The hasher's own read of these bytes reports the error.
  } finally {
    served = req;
    Atomics.store(c, ${DONE}, req);
    Atomics.notify(c, ${DONE});
  }
}
`;

/** How long the first file waits for the thread to start before going on without it. */
const START_MS = 10_000;

/** One reader thread per process, started by the first big file (its start costs ~40 ms). */
export class ReadAhead {
  private readonly c = new Int32Array(new SharedArrayBuffer(CONTROL * 4));
  private readonly worker: Worker;
  private req = 0;
  /** The thread did not start, or ended: files are read without it from then on. */
  private dead = false;

  constructor() {
    // execArgv: the thread needs only fs, not the loaders (tsx) the build itself was started with.
    this.worker = new Worker(WORKER, { eval: true, workerData: this.c.buffer, execArgv: [] });
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
   * Starts reading the open file `fd` ahead of the hasher, from byte `from` on; false when the
   * thread is not running. Until stop(), the hasher reports how far it got with progress().
   */
  start(fd: number, from: number): boolean {
    if (this.dead || !this.ready()) return false;
    const c = this.c;
    const req = ++this.req;
    Atomics.store(c, FD, fd);
    Atomics.store(c, FROM_LO, from % 2 ** 32);
    Atomics.store(c, FROM_HI, Math.floor(from / 2 ** 32));
    this.progress(from);
    Atomics.store(c, REQ, req);
    Atomics.notify(c, REQ);
    return true;
  }

  /** The hasher has read up to byte `at`: the thread may read on to AHEAD bytes past it. */
  progress(at: number): void {
    const c = this.c;
    Atomics.store(c, POS_LO, at % 2 ** 32);
    Atomics.store(c, POS_HI, Math.floor(at / 2 ** 32));
    Atomics.add(c, TICK, 1);
    Atomics.notify(c, TICK);
  }

  /** Stops the current request and waits until the worker has let go of its descriptor. */
  stop(): void {
    const c = this.c;
    const req = this.req;
    Atomics.store(c, CANCEL, req);
    this.progress(Number.MAX_SAFE_INTEGER - AHEAD);
    for (let d; (d = Atomics.load(c, DONE)) !== req && !this.dead; ) Atomics.wait(c, DONE, d, 1000);
  }
}

/**
 * Whether the rest of a file is worth reading ahead, after the hasher's own first reads: when
 * reading took as long as hashing. A file the page cache holds read in 0.45-0.6 of its hashing
 * time on the Xeon VM, the disk's first 8 MiB in 2.6x.
 */
export function readAheadPays(readMs: number, hashMs: number): boolean {
  return readMs >= hashMs;
}
