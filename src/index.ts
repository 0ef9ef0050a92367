export { checkAtime, DEFAULT_CUTOFF_MINUTES, type CheckOptions } from './check/index.js';
export type { CheckReport, CheckMode, TouchIdentity } from './check/report.js';
export type { StatSnapshot } from './check/snapshot.js';
export type { Finding, FindingCode, Severity } from './findings.js';
export { ChunkguardError, type ChunkguardErrorCode } from './errors.js';
export { zeroChunkBlob, zeroChunkDigest, ZERO_CHUNK_SIZE } from './chunk/zero-chunk.js';
export { parseBlob, encodeBlob, COMPRESSED_BLOB_MAGIC, UNCOMPRESSED_BLOB_MAGIC } from './chunk/blob.js';
export { auditStore, type AuditOptions, type AuditProgress } from './audit/index.js';
export type { AuditReport, OwnerSummary } from './audit/report.js';
