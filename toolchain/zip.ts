// Minimal ZIP writer and reader. NPZ files and the wts.h5.zip bundle are both ZIP archives.
// The writer only STOREs (no compression): numpy's np.savez does the same, it keeps the
// writer tiny, and with a fixed entry timestamp and a caller-given entry order the archive
// bytes depend only on the entry contents, which is what makes reruns byte-identical.
// The reader also inflates DEFLATE entries so a --base-npz made by np.savez_compressed loads.
import { closeSync, openSync, readFileSync, renameSync, rmSync, writeSync } from 'node:fs';
import { crc32 as zlibCrc32, inflateRawSync } from 'node:zlib';

export interface ZipEntry {
  name: string;
  /** Content as one or more chunks (large arrays are not concatenated into one buffer). */
  data: Buffer | Buffer[];
}

// 1980-01-01 00:00:00, the earliest DOS date: a fixed stamp instead of the wall clock.
const DOS_TIME = 0;
const DOS_DATE = (0 << 9) | (1 << 5) | 1;
const LIMIT32 = 0xffffffff;

function chunksOf(e: ZipEntry): Buffer[] {
  return Array.isArray(e.data) ? e.data : [e.data];
}

export function crc32(chunks: Buffer[]): number {
  let c = 0;
  for (const b of chunks) c = zlibCrc32(b, c);
  return c >>> 0;
}

/** Write a STORED zip to `path`, entries in the given order. */
export function writeZip(path: string, entries: ZipEntry[]): void {
  // Written under a temporary name and renamed, so an interrupted run never leaves a
  // truncated archive under the real name (and concurrent readers see old or new, not half).
  const tmp = `${path}.tmp-${process.pid}`;
  const fd = openSync(tmp, 'w');
  try {
    let offset = 0;
    const put = (b: Buffer): void => {
      let done = 0;
      while (done < b.length) done += writeSync(fd, b, done, b.length - done);
      offset += b.length;
    };
    const central: Buffer[] = [];
    for (const e of entries) {
      const chunks = chunksOf(e);
      const size = chunks.reduce((s, b) => s + b.length, 0);
      if (size > LIMIT32 || offset > LIMIT32) throw new Error(`zip entry ${e.name} too large (no zip64 support)`);
      const crc = crc32(chunks);
      const name = Buffer.from(e.name, 'utf8');
      const local = Buffer.alloc(30);
      local.writeUInt32LE(0x04034b50, 0);
      local.writeUInt16LE(20, 4); // version needed
      local.writeUInt16LE(0x0800, 6); // flags: UTF-8 names
      local.writeUInt16LE(0, 8); // method: stored
      local.writeUInt16LE(DOS_TIME, 10);
      local.writeUInt16LE(DOS_DATE, 12);
      local.writeUInt32LE(crc, 14);
      local.writeUInt32LE(size, 18);
      local.writeUInt32LE(size, 22);
      local.writeUInt16LE(name.length, 26);
      local.writeUInt16LE(0, 28);
      const cd = Buffer.alloc(46);
      cd.writeUInt32LE(0x02014b50, 0);
      cd.writeUInt16LE(0x031e, 4); // made by: unix, 3.0
      cd.writeUInt16LE(20, 6);
      cd.writeUInt16LE(0x0800, 8);
      cd.writeUInt16LE(0, 10);
      cd.writeUInt16LE(DOS_TIME, 12);
      cd.writeUInt16LE(DOS_DATE, 14);
      cd.writeUInt32LE(crc, 16);
      cd.writeUInt32LE(size, 20);
      cd.writeUInt32LE(size, 24);
      cd.writeUInt16LE(name.length, 28);
      cd.writeUInt32LE((0o100644 << 16) >>> 0, 38); // external attrs: regular file rw-r--r--
      cd.writeUInt32LE(offset, 42);
      central.push(cd, name);
      put(local);
      put(name);
      for (const b of chunks) put(b);
    }
    const cdStart = offset;
    for (const b of central) put(b);
    const end = Buffer.alloc(22);
    end.writeUInt32LE(0x06054b50, 0);
    end.writeUInt16LE(entries.length, 8);
    end.writeUInt16LE(entries.length, 10);
    end.writeUInt32LE(offset - cdStart, 12);
    end.writeUInt32LE(cdStart, 16);
    put(end);
  } catch (e) {
    closeSync(fd);
    rmSync(tmp, { force: true });
    throw e;
  }
  closeSync(fd);
  renameSync(tmp, path);
}

/** Read every entry of a zip file (STORED or DEFLATE; zip64 sizes/offsets as numpy writes). */
export function readZip(path: string): Map<string, Buffer> {
  const buf = readFileSync(path);
  return readZipBuffer(buf, path);
}

export function readZipBuffer(buf: Buffer, label = 'zip'): Map<string, Buffer> {
  let eocd = -1;
  for (let i = buf.length - 22; i >= Math.max(0, buf.length - 22 - 65535); i--) {
    if (buf.readUInt32LE(i) === 0x06054b50) {
      eocd = i;
      break;
    }
  }
  if (eocd < 0) throw new Error(`${label}: not a zip file (no end-of-central-directory record)`);
  let count = buf.readUInt16LE(eocd + 10);
  let cdOffset = buf.readUInt32LE(eocd + 16);
  if (cdOffset === LIMIT32 || count === 0xffff) {
    // zip64 end of central directory locator sits right before the classic record
    const loc = eocd - 20;
    if (loc >= 0 && buf.readUInt32LE(loc) === 0x07064b50) {
      const z64 = Number(buf.readBigUInt64LE(loc + 8));
      count = Number(buf.readBigUInt64LE(z64 + 32));
      cdOffset = Number(buf.readBigUInt64LE(z64 + 48));
    }
  }
  const out = new Map<string, Buffer>();
  let p = cdOffset;
  for (let i = 0; i < count; i++) {
    if (buf.readUInt32LE(p) !== 0x02014b50) throw new Error(`${label}: corrupt central directory`);
    const method = buf.readUInt16LE(p + 10);
    let csize = buf.readUInt32LE(p + 20);
    let usize = buf.readUInt32LE(p + 24);
    const nlen = buf.readUInt16LE(p + 28);
    const xlen = buf.readUInt16LE(p + 30);
    const clen = buf.readUInt16LE(p + 32);
    let lho = buf.readUInt32LE(p + 42);
    const name = buf.toString('utf8', p + 46, p + 46 + nlen);
    // zip64 extra field: values present only for the 32-bit fields that are saturated
    let x = p + 46 + nlen;
    const xend = x + xlen;
    while (x + 4 <= xend) {
      const id = buf.readUInt16LE(x);
      const len = buf.readUInt16LE(x + 2);
      if (id === 0x0001) {
        let q = x + 4;
        if (usize === LIMIT32) (usize = Number(buf.readBigUInt64LE(q))), (q += 8);
        if (csize === LIMIT32) (csize = Number(buf.readBigUInt64LE(q))), (q += 8);
        if (lho === LIMIT32) lho = Number(buf.readBigUInt64LE(q));
      }
      x += 4 + len;
    }
    p = xend + clen;
    if (buf.readUInt32LE(lho) !== 0x04034b50) throw new Error(`${label}: corrupt local header for ${name}`);
    const dataStart = lho + 30 + buf.readUInt16LE(lho + 26) + buf.readUInt16LE(lho + 28);
    const raw = buf.subarray(dataStart, dataStart + csize);
    if (method === 0) out.set(name, raw);
    else if (method === 8) out.set(name, inflateRawSync(raw));
    else throw new Error(`${label}: entry ${name} uses unsupported compression method ${method}`);
    if (out.get(name)!.length !== usize) throw new Error(`${label}: size mismatch in entry ${name}`);
  }
  return out;
}
