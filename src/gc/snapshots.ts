/**
 * The second pass over the indexes, made only when some referenced chunk is
 * missing, kept only by the touch, or cannot be touched: which snapshots
 * reference those (an index outside the scheme stands for itself), and where
 * in the server's marking order the first untouchable chunk is met. The set
 * keeps no index per digest (that would cost a list per chunk); reading the
 * indexes again costs their bytes, a fraction of the chunks'.
 */
import type { DirTree } from '../fs/dir-tree.js';
import { relText } from '../fs/rel-path.js';
import { DIGEST_BYTES, type DigestSink, DigestWords } from './digest-words.js';
import type { DigestVisitor } from './index-file.js';
import type { IndexWalk } from './index-walk.js';
import { type Marked, readIndexAt } from './mark.js';
import { FLAG } from './sweep.js';

export interface Attribution {
  /** Snapshots (or indexes outside the scheme) referencing a missing chunk. */
  broken: string[];
  /** Those referencing a chunk only the touch keeps. */
  atRisk: string[];
  /** The first index in marking order holding a chunk the GC user cannot touch, and that chunk (hex). */
  firstUnmarkable?: { position: number; digest: string };
}

const WANTED = FLAG.MISSING | FLAG.AT_RISK | FLAG.UNMARKABLE;

export function attribute(tree: DirTree, walk: IndexWalk, marked: Marked, flags: Uint8Array, signal?: AbortSignal): Attribution {
  const broken = new Set<string>();
  const atRisk = new Set<string>();
  let firstUnmarkable: Attribution['firstUnmarkable'];
  if (!flags.some((bits) => (bits & WANTED) !== 0)) return { broken: [], atRisk: [] };
  let seen = 0;
  let unmarkableDigest: string | undefined;
  const judge: DigestSink = (words, at) => {
    const index = marked.set.indexOfWords(words, at);
    if (index < 0) return;
    const bits = flags[index]!;
    seen |= bits;
    if (bits & FLAG.UNMARKABLE && unmarkableDigest === undefined) unmarkableDigest = Buffer.from(words.buffer, words.byteOffset + at * 4, DIGEST_BYTES).toString('hex');
  };
  const digest = new DigestWords();
  const visit: DigestVisitor = (bytes, first, count, stride) => digest.forEach(bytes, first, count, stride, judge);
  walk.indexes.forEach((found, position) => {
    if (!marked.outcomes[position]!.counted) return;
    signal?.throwIfAborted();
    seen = 0;
    unmarkableDigest = undefined;
    readIndexAt(tree, found.rel, visit);
    const owner = found.snapshot ?? relText(found.rel);
    if (seen & FLAG.MISSING) broken.add(owner);
    if (seen & FLAG.AT_RISK) atRisk.add(owner);
    if (unmarkableDigest !== undefined && !firstUnmarkable) firstUnmarkable = { position, digest: unmarkableDigest };
  });
  return { broken: [...broken].sort(), atRisk: [...atRisk].sort(), ...(firstUnmarkable ? { firstUnmarkable } : {}) };
}
