/**
 * Paths relative to the audited directory. A name that is not valid UTF-8
 * stays raw bytes (a Buffer) end to end, so `--list` and the fix journal
 * name exactly the file on disk. Path safety for paths read back from a
 * journal lives here too (unsafeRel, unsafeComponent).
 */
export type RelPath = string | Buffer;

const SLASH = Buffer.from('/');

export function joinRel(parent: RelPath, name: RelPath): RelPath {
  if (parent === '' || (Buffer.isBuffer(parent) && parent.length === 0)) return name;
  if (typeof parent === 'string' && typeof name === 'string') return `${parent}/${name}`;
  return Buffer.concat([Buffer.from(parent), SLASH, Buffer.from(name)]);
}

/**
 * The components, to open one at a time with openat(O_NOFOLLOW). Strings and
 * raw bytes split alike: an empty part stays, so a path checker sees it.
 */
export function splitRel(rel: RelPath): RelPath[] {
  if (typeof rel === 'string') return rel === '' ? [] : rel.split('/');
  if (rel.length === 0) return [];
  const parts: Buffer[] = [];
  let start = 0;
  for (let i = 0; i <= rel.length; i++) {
    if (i === rel.length || rel[i] === 0x2f) {
      parts.push(rel.subarray(start, i));
      start = i + 1;
    }
  }
  return parts;
}

export function parentRel(rel: RelPath): RelPath {
  const parts = splitRel(rel);
  parts.pop();
  return parts.reduce<RelPath>((joined, part) => joinRel(joined, part), '');
}

export function baseName(rel: RelPath): RelPath {
  return splitRel(rel).at(-1) ?? '';
}

/**
 * The path as `find <root>` prints it: the root argument as given, children
 * appended with one slash unless the argument already ends with one.
 */
export function displayPath(root: string, rel: RelPath): RelPath {
  if (rel === '' || (Buffer.isBuffer(rel) && rel.length === 0)) return root;
  const prefix = root.endsWith('/') ? root : `${root}/`;
  return typeof rel === 'string' ? `${prefix}${rel}` : Buffer.concat([Buffer.from(prefix), rel]);
}

/** Text for reports and JSON (invalid bytes become U+FFFD; the raw form goes in a base64 field). */
export function relText(rel: RelPath): string {
  return typeof rel === 'string' ? rel : rel.toString('utf8');
}

export function relBytes(rel: RelPath): Buffer {
  return typeof rel === 'string' ? Buffer.from(rel) : rel;
}

/** A name from readdir with encoding 'buffer': a string when it round-trips through UTF-8. */
export function nameFromBytes(bytes: Buffer): RelPath {
  // ASCII is UTF-8 as it is: no round trip (a store has 65,536 directory names to decode).
  let ascii = true;
  for (let i = 0; i < bytes.length && ascii; i++) ascii = bytes[i]! < 0x80;
  if (ascii) return bytes.toString('latin1');
  const text = bytes.toString('utf8');
  return Buffer.from(text).equals(bytes) ? text : bytes;
}

/** Buffers arrive from a worker as plain Uint8Arrays: make them Buffers again. */
export function reviveRel(rel: RelPath | Uint8Array): RelPath {
  if (typeof rel === 'string' || Buffer.isBuffer(rel)) return rel;
  return Buffer.from(rel.buffer, rel.byteOffset, rel.byteLength);
}

const DOT = 0x2e;

/** Why one component cannot be opened below a directory ('', '.', '..', a slash or a NUL), or undefined. */
export function unsafeComponent(name: RelPath): string | undefined {
  // Strings are checked as they are: the audit asks this for every directory it opens.
  if (typeof name === 'string') {
    if (name === '') return 'an empty component';
    if (name === '.' || name === '..') return `a "${name}" component`;
    if (name.includes('/')) return 'a slash inside a name';
    if (name.includes('\0')) return 'a NUL byte';
    return undefined;
  }
  const bytes = name;
  if (bytes.length === 0) return 'an empty component';
  if (bytes[0] === DOT && (bytes.length === 1 || (bytes.length === 2 && bytes[1] === DOT))) return `a "${bytes.toString()}" component`;
  if (bytes.includes(0x2f)) return 'a slash inside a name';
  if (bytes.includes(0)) return 'a NUL byte';
  return undefined;
}

/**
 * Why a relative path from an untrusted source (a journal) could leave the
 * directory it is relative to, or undefined: absolute, an empty, "." or ".."
 * component anywhere, or a NUL byte.
 */
export function unsafeRel(rel: RelPath): string | undefined {
  const bytes = relBytes(rel);
  if (bytes.length === 0) return 'an empty path';
  if (bytes[0] === 0x2f) return 'an absolute path';
  let start = 0;
  for (let i = 0; i <= bytes.length; i++) {
    if (i < bytes.length && bytes[i] !== 0x2f) continue;
    const why = unsafeComponent(bytes.subarray(start, i));
    if (why) return why;
    start = i + 1;
  }
  return undefined;
}
