import { createHash, randomBytes } from 'node:crypto';
import { createReadStream, createWriteStream, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { CRC32C } from '@google-cloud/storage';
import { FIREBASE_MAX_OBJECT, RESUMABLE_GRANULE } from './config.js';
import { fail } from './errors.js';

/** What a resumable PUT's Content-Range says. */
export type ContentRange =
  /** `bytes *\/*` or `bytes *\/N`: how much is persisted? (with N and an empty body: the upload ends at N) */
  | { kind: 'query'; total?: number }
  /** `bytes A-B/N`, `bytes A-B/*`, `bytes A-*\/N` or `bytes A-*\/*` (the rest of the object is this body). */
  | { kind: 'data'; start: number; end?: number; total?: number };

export function parseContentRange(header: string | undefined): ContentRange {
  const m = /^bytes (?:\*|(\d+)-(\d+|\*))\/(\d+|\*)$/.exec((header ?? '').trim());
  if (!m) return fail(400, 'invalid', `Failed to parse Content-Range header: ${header ?? '(none)'}`);
  const total = m[3] === '*' ? undefined : Number(m[3]);
  if (m[1] === undefined) return { kind: 'query', ...(total !== undefined ? { total } : {}) };
  const start = Number(m[1]);
  const end = m[2] === '*' ? undefined : Number(m[2]);
  if (end !== undefined && end < start)
    return fail(400, 'invalid', `Failed to parse Content-Range header: ${header}`);
  return {
    kind: 'data',
    start,
    ...(end !== undefined ? { end } : {}),
    ...(total !== undefined ? { total } : {}),
  };
}

/** One resumable upload session: where its bytes are kept until the object is made. */
export interface Session {
  id: string;
  bucket: string;
  name: string;
  /** The object resource the session was started with (contentType, metadata...). */
  resource: Record<string, unknown>;
  /** ifGenerationMatch of the session's start, checked again when the object is made. */
  ifGenerationMatch?: string;
  /** Bytes persisted, from offset 0. */
  persisted: number;
  /** The object's size, once a request said it. */
  total?: number;
  file: string;
  /** The object resource, once made. */
  result?: Record<string, unknown>;
  cancelled: boolean;
  /** Every data request whose body arrived whole: where it started, how many bytes, when (ms). */
  received: { start: number; bytes: number; at: number }[];
}

/** What a session received, for tests: whether an upload resumed or started over. */
export interface UploadStat {
  bucket: string;
  name: string;
  persisted: number;
  complete: boolean;
  cancelled: boolean;
  received: { start: number; bytes: number; at: number }[];
}

/**
 * Resumable upload sessions as Cloud Storage keeps them, for what the Firebase emulator lacks: it finishes
 * an upload at its first PUT, whatever Content-Range says, so chunked uploads and status queries are served
 * here. Chunks are written to a file per session (a broken request persists nothing); every chunk but the
 * last is persisted in multiples of 256 KiB, as Cloud Storage does, and the 308 answer's Range says how much.
 */
export class ResumableSessions {
  private readonly dir = mkdtempSync(join(tmpdir(), 'plume-gcs-uploads-'));
  private readonly sessions = new Map<string, Session>();

  start(
    bucket: string,
    name: string,
    resource: Record<string, unknown>,
    ifGenerationMatch?: string,
  ): Session {
    const id = `ADPycd${randomBytes(36).toString('base64url')}`;
    const file = join(this.dir, id.slice(0, 40));
    writeFileSync(file, '');
    const session: Session = {
      id,
      bucket,
      name,
      resource,
      ...(ifGenerationMatch !== undefined ? { ifGenerationMatch } : {}),
      persisted: 0,
      file,
      cancelled: false,
      received: [],
    };
    this.sessions.set(id, session);
    return session;
  }

  get(id: string): Session | undefined {
    return this.sessions.get(id);
  }

  /**
   * Persist one data request's body. Returns true when the object is complete (its total is known and all
   * of it is persisted). The body is streamed to the session's file at its offset and counted only once it
   * has all arrived.
   */
  async write(session: Session, range: ContentRange & { kind: 'data' }, body: Readable): Promise<boolean> {
    if (range.start > session.persisted)
      fail(
        400,
        'invalid',
        `Invalid request. According to the Content-Range header, the upload offset is ${range.start} byte(s), which exceeds already uploaded size of ${session.persisted} byte(s).`,
      );
    if (range.total !== undefined) this.setTotal(session, range.total);
    let received = 0;
    body.on('data', (chunk: Buffer) => (received += chunk.length));
    await pipeline(body, createWriteStream(session.file, { flags: 'r+', start: range.start }));
    const end = range.start + received;
    session.received.push({ start: range.start, bytes: received, at: Date.now() });
    if (range.end !== undefined && end !== range.end + 1)
      fail(
        400,
        'invalid',
        `Content-Range says ${range.end - range.start + 1} byte(s), the request carried ${received}`,
      );
    if (end > FIREBASE_MAX_OBJECT)
      fail(
        400,
        'invalid',
        `emulator: objects over ${FIREBASE_MAX_OBJECT} bytes are not served (Firebase's limit)`,
      );
    // `A-*/*`: this body is the rest of the object.
    if (range.end === undefined && session.total === undefined) this.setTotal(session, end);
    const final = session.total !== undefined && end >= session.total;
    const persisted = final ? end : end - (end % RESUMABLE_GRANULE);
    session.persisted = Math.max(session.persisted, persisted);
    return final;
  }

  /** A query that names the total (`bytes *\/N`): the upload is complete when all of it is there. */
  complete(session: Session, total: number): boolean {
    this.setTotal(session, total);
    return session.persisted === total;
  }

  private setTotal(session: Session, total: number): void {
    if (session.total !== undefined && session.total !== total)
      fail(400, 'invalid', `Content-Range total ${total} differs from ${session.total} given before`);
    if (total > FIREBASE_MAX_OBJECT)
      fail(
        400,
        'invalid',
        `emulator: objects over ${FIREBASE_MAX_OBJECT} bytes are not served (Firebase's limit)`,
      );
    session.total = total;
  }

  /** The persisted bytes, for handing the whole object to Firebase. */
  read(session: Session): Readable {
    return session.persisted === 0
      ? Readable.from([])
      : createReadStream(session.file, { start: 0, end: session.persisted - 1 });
  }

  /** MD5 and CRC32C of the persisted bytes, base64 as X-Goog-Hash and object resources write them. */
  async hashes(session: Session): Promise<{ md5: string; crc32c: string }> {
    const md5 = createHash('md5');
    const crc = new CRC32C();
    for await (const chunk of this.read(session)) {
      md5.update(chunk as Buffer);
      crc.update(chunk as Buffer);
    }
    return { md5: md5.digest('base64'), crc32c: crc.toString() };
  }

  /** Every session since the last clear, oldest first. */
  stats(): UploadStat[] {
    return [...this.sessions.values()].map((s) => ({
      bucket: s.bucket,
      name: s.name,
      persisted: s.persisted,
      complete: s.result !== undefined,
      cancelled: s.cancelled,
      received: s.received.map((r) => ({ ...r })),
    }));
  }

  /** The session's bytes are no longer needed (object made, or session cancelled). */
  release(session: Session): void {
    rmSync(session.file, { force: true });
  }

  clear(): void {
    for (const s of this.sessions.values()) this.release(s);
    this.sessions.clear();
  }

  close(): void {
    this.sessions.clear();
    rmSync(this.dir, { recursive: true, force: true });
  }
}
