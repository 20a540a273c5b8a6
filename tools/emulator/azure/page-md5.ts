import { createHash } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import type { ErrorSpec, Reply } from '../replies.js';
import { readBounded, type HttpUpstream } from '../upstream.js';
import { blobErrorReply } from './errors.js';

/** Put Page takes at most 4 MiB a call. */
export const MAX_PUT_PAGE = 4 * 1024 * 1024;

/**
 * Put Page as Azure Storage does it where Azurite does not (its handler leaves Content-MD5 as a TODO):
 * a body over 4 MiB is refused with 413, a body whose MD5 differs from its Content-MD5 with 400
 * Md5Mismatch before anything is written, and a good one is passed on and answered with its Content-MD5.
 */
export async function putPage(req: IncomingMessage, upstream: HttpUpstream): Promise<Reply> {
  const method = req.method ?? 'PUT';
  const declared = Number(req.headers['content-length'] ?? 0);
  const tooLarge: ErrorSpec = {
    code: 'RequestBodyTooLarge',
    message: 'The request body is too large and exceeds the maximum permissible limit.',
    status: 413,
  };
  if (declared > MAX_PUT_PAGE) return blobErrorReply(tooLarge, method);
  const expected = req.headers['content-md5'];
  if (typeof expected !== 'string') {
    return upstream.stream({ method, path: req.url ?? '/', headers: req.headers, body: req });
  }
  const body = await readBounded(req, MAX_PUT_PAGE);
  if (!body) return blobErrorReply(tooLarge, method);
  const actual = createHash('md5').update(body).digest('base64');
  if (actual !== expected) {
    return blobErrorReply(
      {
        code: 'Md5Mismatch',
        message:
          'The MD5 value specified in the request did not match with the MD5 value calculated by the server.',
        status: 400,
        details: { UserSpecifiedMd5: expected, ServerCalculatedMd5: actual },
      },
      method,
    );
  }
  const reply = await upstream.stream({ method, path: req.url ?? '/', headers: req.headers, body });
  if (reply.status === 201) reply.headers['content-md5'] = actual;
  return reply;
}
