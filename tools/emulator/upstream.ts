import {
  Agent,
  request,
  type IncomingHttpHeaders,
  type IncomingMessage,
  type OutgoingHttpHeaders,
} from 'node:http';
import type { Readable } from 'node:stream';
import type { BufferedReply, StreamReply } from './replies.js';
import { parseXml, responseBody, type XmlNode } from './xml.js';

/** Headers that describe one hop, not the message: never copied between the two connections. */
const HOP_BY_HOP = new Set([
  'connection',
  'keep-alive',
  'transfer-encoding',
  'upgrade',
  'proxy-connection',
  'proxy-authorization',
  'te',
  'trailer',
  'expect',
]);

export function endToEnd(headers: IncomingHttpHeaders): OutgoingHttpHeaders {
  const out: OutgoingHttpHeaders = {};
  for (const [k, v] of Object.entries(headers)) {
    if (v !== undefined && !HOP_BY_HOP.has(k)) out[k] = v;
  }
  return out;
}

export interface UpstreamRequest {
  method: string;
  path: string;
  headers: IncomingHttpHeaders;
  /** A buffered body (its length replaces content-length) or a stream to pipe. */
  body?: Buffer | Readable;
}

export interface Ec2Result {
  status: number;
  /** The element under the document root, e.g. the contents of `<DescribeImagesResponse>`. */
  body: XmlNode;
  raw: string;
}

/** Read a body of at most `limit` bytes; undefined when it is larger (the rest is left unread). */
export async function readBounded(stream: Readable, limit: number): Promise<Buffer | undefined> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of stream) {
    size += (chunk as Buffer).length;
    if (size > limit) return undefined;
    chunks.push(chunk as Buffer);
  }
  return Buffer.concat(chunks);
}

export async function readAll(stream: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(chunk as Buffer);
  return chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks);
}

/**
 * The connection to the server an emulator front passes calls to (moto, Azurite) on 127.0.0.1: requests
 * are forwarded with their end-to-end headers, answers streamed or buffered.
 */
export class HttpUpstream {
  private readonly agent = new Agent({ keepAlive: true, maxSockets: 64 });

  constructor(readonly port: number) {}

  get endpoint(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  send(req: UpstreamRequest): Promise<IncomingMessage> {
    const headers = endToEnd(req.headers);
    if (Buffer.isBuffer(req.body)) headers['content-length'] = req.body.length;
    else if (req.body === undefined) delete headers['content-length'];
    return new Promise((resolve, reject) => {
      const up = request(
        {
          host: '127.0.0.1',
          port: this.port,
          method: req.method,
          path: req.path,
          headers,
          agent: this.agent,
        },
        resolve,
      );
      up.on('error', reject);
      if (Buffer.isBuffer(req.body)) up.end(req.body);
      else if (req.body) {
        req.body.on('error', (e) => up.destroy(e));
        req.body.pipe(up);
      } else up.end();
    });
  }

  async stream(req: UpstreamRequest): Promise<StreamReply> {
    const res = await this.send(req);
    return { status: res.statusCode ?? 502, headers: endToEnd(res.headers), stream: res };
  }

  async buffered(req: UpstreamRequest): Promise<BufferedReply> {
    const res = await this.send(req);
    const body = await readAll(res);
    const headers = endToEnd(res.headers);
    headers['content-length'] = body.length;
    return { status: res.statusCode ?? 502, headers, body };
  }

  close(): void {
    this.agent.destroy();
  }
}

/**
 * The connection to moto. moto (werkzeug) answers `Connection: close`, so the keep-alive agent mostly
 * saves nothing today; it is there so a keep-alive capable backend costs no change here.
 */
export class Upstream extends HttpUpstream {
  /**
   * An EC2 call the proxy makes on its own behalf (tagging, copying snapshots, lookups). moto does not
   * check signatures, only reads the credential scope to pick the region and account.
   */
  async ec2(
    region: string,
    accessKeyId: string,
    action: string,
    params: Record<string, string> = {},
  ): Promise<Ec2Result> {
    const form = new URLSearchParams({ Action: action, Version: '2016-11-15', ...params });
    const date = new Date().toISOString().slice(0, 10).replace(/-/g, '');
    const reply = await this.buffered({
      method: 'POST',
      path: '/',
      headers: {
        host: `127.0.0.1:${this.port}`,
        'content-type': 'application/x-www-form-urlencoded; charset=utf-8',
        authorization:
          `AWS4-HMAC-SHA256 Credential=${accessKeyId}/${date}/${region}/ec2/aws4_request, ` +
          'SignedHeaders=host, Signature=0',
      },
      body: Buffer.from(form.toString(), 'utf8'),
    });
    const raw = reply.body.toString('utf8');
    let body: XmlNode = {};
    try {
      body = responseBody(parseXml(raw));
    } catch {
      // moto answers some failures with HTML; the status says enough then.
    }
    return { status: reply.status, body, raw };
  }

  async reset(): Promise<void> {
    const res = await this.send({ method: 'POST', path: '/moto-api/reset', headers: {} });
    await readAll(res);
    if (res.statusCode !== 200) throw new Error(`moto reset answered HTTP ${res.statusCode}`);
  }
}
