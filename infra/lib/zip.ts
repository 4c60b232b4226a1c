// Just enough of the ZIP format to check a layer archive before it is
// uploaded: the central directory's entry names and, where the archive was
// made on Unix, their file modes. No decompression, no dependency.
import * as fs from 'fs';

export interface ZipEntry {
  /** Path inside the archive, '/'-separated. */
  readonly name: string;
  /** Unix mode bits (file type and permissions), or undefined when the archive does not record them. */
  readonly unixMode?: number;
}

const EOCD_SIG = 0x06054b50;
const CDH_SIG = 0x02014b50;

/** The entries of the ZIP archive at `file`, from its central directory. Throws on anything that is not a ZIP archive. */
export function listZipEntries(file: string): ZipEntry[] {
  const buf = fs.readFileSync(file);
  // The end-of-central-directory record is 22 bytes plus a comment of at most 65535.
  const lowest = Math.max(0, buf.length - 22 - 0xffff);
  let eocd = -1;
  for (let i = buf.length - 22; i >= lowest; i--) {
    if (buf.readUInt32LE(i) === EOCD_SIG) {
      eocd = i;
      break;
    }
  }
  if (eocd < 0) {
    throw new Error(`${file} is not a ZIP archive (no end-of-central-directory record)`);
  }
  const count = buf.readUInt16LE(eocd + 10);
  const cdOffset = buf.readUInt32LE(eocd + 16);
  if (count === 0xffff || cdOffset === 0xffffffff) {
    throw new Error(`${file} is a ZIP64 archive; a Lambda layer zip is small enough not to need ZIP64`);
  }
  const entries: ZipEntry[] = [];
  let p = cdOffset;
  for (let n = 0; n < count; n++) {
    if (p + 46 > buf.length || buf.readUInt32LE(p) !== CDH_SIG) {
      throw new Error(`${file} has a damaged central directory (entry ${n + 1} of ${count})`);
    }
    const madeBy = buf.readUInt16LE(p + 4) >> 8; // host system: 3 = Unix
    const nameLen = buf.readUInt16LE(p + 28);
    const extraLen = buf.readUInt16LE(p + 30);
    const commentLen = buf.readUInt16LE(p + 32);
    const external = buf.readUInt32LE(p + 38);
    const name = buf.toString('utf8', p + 46, p + 46 + nameLen);
    const mode = external >>> 16;
    entries.push({ name, unixMode: madeBy === 3 && mode !== 0 ? mode : undefined });
    p += 46 + nameLen + extraLen + commentLen;
  }
  return entries;
}
