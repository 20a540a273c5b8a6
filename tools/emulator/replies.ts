import { randomUUID } from 'node:crypto';
import type { IncomingMessage, OutgoingHttpHeaders, ServerResponse } from 'node:http';
import { finished } from 'node:stream/promises';
import type { FaultRule } from './types.js';
import { escapeXml } from './xml.js';

/** A response the proxy built or buffered (and may have rewritten). */
export interface BufferedReply {
  status: number;
  headers: OutgoingHttpHeaders;
  body: Buffer;
}

/** A moto response passed through untouched, body still streaming. */
export interface StreamReply {
  status: number;
  headers: OutgoingHttpHeaders;
  stream: IncomingMessage;
}

export type Reply = BufferedReply | StreamReply;

export function isStream(reply: Reply): reply is StreamReply {
  return 'stream' in reply;
}

/** Write a reply (piping a streamed one) and wait until it has gone out. */
export async function sendReply(res: ServerResponse, reply: Reply): Promise<void> {
  res.writeHead(reply.status, reply.headers);
  if (isStream(reply)) reply.stream.pipe(res);
  else res.end(reply.body);
  await finished(res);
}

export const EC2_NS = 'http://ec2.amazonaws.com/doc/2016-11-15/';

export function xmlReply(status: number, xml: string, extra: OutgoingHttpHeaders = {}): BufferedReply {
  const body = Buffer.from(xml, 'utf8');
  return {
    status,
    headers: { 'content-type': 'text/xml;charset=UTF-8', ...extra, 'content-length': body.length },
    body,
  };
}

export function jsonReply(status: number, value: unknown, extra: OutgoingHttpHeaders = {}): BufferedReply {
  const body = Buffer.from(JSON.stringify(value), 'utf8');
  return {
    status,
    headers: { 'content-type': 'application/json', ...extra, 'content-length': body.length },
    body,
  };
}

/** An EC2 success response of our own making; `inner` is already-escaped XML. */
export function ec2Ok(action: string, inner: string): BufferedReply {
  return xmlReply(
    200,
    `<?xml version="1.0" encoding="UTF-8"?>\n<${action}Response xmlns="${EC2_NS}">` +
      `<requestId>${randomUUID()}</requestId>${inner}</${action}Response>`,
  );
}

export interface ErrorSpec {
  code: string;
  message: string;
  status: number;
  /** EBS errors carry a machine-readable Reason next to the message. */
  reason?: string;
}

/**
 * An error in the wire shape of the service's protocol, so the SDK's deserializer sets `name` to the code
 * and its retry strategy classifies it as real AWS would be classified.
 */
export function errorReply(service: string, err: ErrorSpec, method = 'POST'): BufferedReply {
  const requestId = randomUUID();
  const code = escapeXml(err.code);
  const message = escapeXml(err.message);
  switch (service) {
    case 'ec2':
      return xmlReply(
        err.status,
        `<?xml version="1.0" encoding="UTF-8"?>\n<Response><Errors><Error><Code>${code}</Code>` +
          `<Message>${message}</Message></Error></Errors><RequestID>${requestId}</RequestID></Response>`,
      );
    case 'ebs':
      return jsonReply(
        err.status,
        err.reason ? { Message: err.message, Reason: err.reason } : { Message: err.message },
        { 'x-amzn-errortype': err.code, 'x-amzn-requestid': requestId },
      );
    case 's3': {
      const headers = { 'x-amz-request-id': requestId, 'x-amz-id-2': requestId };
      // HEAD responses carry no body on S3; the SDK names those errors from the status code.
      if (method === 'HEAD')
        return { status: err.status, headers: { ...headers, 'content-length': 0 }, body: Buffer.alloc(0) };
      return xmlReply(
        err.status,
        `<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>${code}</Code><Message>${message}</Message>` +
          `<RequestId>${requestId}</RequestId><HostId>${requestId}</HostId></Error>`,
        { 'content-type': 'application/xml', ...headers },
      );
    }
    case 'sts':
    case 'iam': {
      const type = err.status >= 500 ? 'Receiver' : 'Sender';
      return xmlReply(
        err.status,
        `<?xml version="1.0" encoding="UTF-8"?>\n<ErrorResponse><Error><Type>${type}</Type><Code>${code}</Code>` +
          `<Message>${message}</Message></Error><RequestId>${requestId}</RequestId></ErrorResponse>`,
      );
    }
    default:
      return jsonReply(
        err.status,
        { __type: err.code, message: err.message },
        { 'x-amzn-errortype': err.code },
      );
  }
}

/** The fault kinds that answer with the service's own error. */
export type ErrorKind = 'throttle' | 'server-error' | 'access-denied';

/** Per fault kind, the error each service answers with; `default` for services not listed. */
export type FaultErrorTable = Record<ErrorKind, Record<string, ErrorSpec> & { default: ErrorSpec }>;

const AWS_FAULT_ERRORS: FaultErrorTable = {
  throttle: {
    ec2: { code: 'RequestLimitExceeded', message: 'Request limit exceeded.', status: 503 },
    ebs: { code: 'ThrottlingException', message: 'Rate exceeded', status: 429 },
    s3: { code: 'SlowDown', message: 'Please reduce your request rate.', status: 503 },
    sts: { code: 'Throttling', message: 'Rate exceeded', status: 400 },
    default: { code: 'ThrottlingException', message: 'Rate exceeded', status: 429 },
  },
  'server-error': {
    ec2: { code: 'InternalError', message: 'An internal error has occurred', status: 500 },
    ebs: { code: 'InternalServerException', message: 'An internal error has occurred', status: 500 },
    s3: {
      code: 'InternalError',
      message: 'We encountered an internal error. Please try again.',
      status: 500,
    },
    sts: { code: 'InternalFailure', message: 'An internal error has occurred', status: 500 },
    default: { code: 'InternalFailure', message: 'An internal error has occurred', status: 500 },
  },
  'access-denied': {
    ec2: {
      code: 'UnauthorizedOperation',
      message: 'You are not authorized to perform this operation.',
      status: 403,
    },
    ebs: {
      code: 'AccessDeniedException',
      message: 'User is not authorized to perform this action',
      status: 403,
      reason: 'UNAUTHORIZED_ACCOUNT',
    },
    s3: { code: 'AccessDenied', message: 'Access Denied', status: 403 },
    sts: { code: 'AccessDenied', message: 'User is not authorized to perform this action', status: 403 },
    default: { code: 'AccessDeniedException', message: 'Access denied', status: 403 },
  },
};

/** The error a fault rule of an error-producing kind answers with in `table`, the rule's overrides applied. */
export function faultErrorFrom(table: FaultErrorTable, service: string, rule: FaultRule): ErrorSpec {
  const base =
    rule.kind === 'error'
      ? { code: rule.code ?? 'InternalError', message: rule.message ?? 'Injected error', status: 400 }
      : (() => {
          const byService = table[rule.kind as ErrorKind];
          return byService[service] ?? byService.default;
        })();
  return {
    ...base,
    code: rule.code ?? base.code,
    message: rule.message ?? base.message,
    status: rule.status ?? base.status,
  };
}

/** The error an AWS service answers a fault rule with. */
export function faultError(service: string, rule: FaultRule): ErrorSpec {
  return faultErrorFrom(AWS_FAULT_ERRORS, service, rule);
}
