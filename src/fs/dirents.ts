/**
 * The only reader of directory entries: getdents64 on an open descriptor
 * (glibc's wrapper, or the raw syscall where glibc is older than 2.30: the
 * same records either way). Each name is handed over NUL-terminated inside
 * the buffer, so statx can take it without a string being made.
 *
 *   struct linux_dirent64 { u64 d_ino; s64 d_off; u16 d_reclen; u8 d_type; char d_name[]; }
 */
import { libc } from '../native/libc.js';
import { errnoName, FsError } from './errors.js';

const RECLEN = 16;
const NAME = 19;
const BUFFER_SIZE = 64 * 1024;

/**
 * Called for each entry but . and ..: `name` is the buffer from the first
 * byte of the name up to and including its NUL (valid until the next
 * entry). Return false to stop.
 */
export type EntryVisitor = (name: Buffer) => boolean;

export class DirentReader {
  private readonly buf = Buffer.allocUnsafe(BUFFER_SIZE);

  /** Visit every entry of the open directory `fd` from its current offset; `where.path` is read only for an error. */
  forEach(fd: number, where: { readonly path: string }, visit: EntryVisitor): void {
    const { buf } = this;
    for (;;) {
      const length = libc().getdents64(fd, buf, buf.length);
      if (length < 0) throw new FsError(errnoName(libc().errno()), 'getdents64', where.path);
      if (length === 0) return;
      for (let offset = 0; offset < length; ) {
        const recordLength = buf.readUInt16LE(offset + RECLEN);
        const start = offset + NAME;
        const end = buf.indexOf(0, start);
        offset += recordLength;
        // A record whose name is not NUL-terminated within it is a kernel or libc we do not understand.
        if (recordLength < NAME + 1 || end < 0 || end >= offset) throw new FsError('EIO', 'getdents64', where.path, { detail: 'malformed directory record' });
        if (buf[start] === 0x2e && (end === start + 1 || (end === start + 2 && buf[start + 1] === 0x2e))) continue;
        if (!visit(buf.subarray(start, end + 1))) return;
      }
    }
  }
}

/** The name of a visited entry without its NUL, copied out of the buffer. */
export function entryName(name: Buffer): Buffer {
  return Buffer.from(name.subarray(0, name.length - 1));
}
