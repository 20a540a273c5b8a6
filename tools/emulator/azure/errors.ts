import { randomUUID } from 'node:crypto';
import type { OutgoingHttpHeaders } from 'node:http';
import { jsonReply, xmlReply, type BufferedReply, type ErrorSpec, type FaultErrorTable } from '../replies.js';
import { escapeXml } from '../xml.js';

/** An ARM error: `{"error":{"code","message","target?","details?"}}` with its HTTP status. */
export interface ArmError {
  status: number;
  code: string;
  message: string;
  target?: string;
  details?: { code: string; message: string; target?: string }[];
}

/** Thrown by handlers and validators; the ARM front turns it into the error reply. */
export class ArmFailure extends Error {
  constructor(readonly error: ArmError) {
    super(error.message);
  }
}

export function fail(status: number, code: string, message: string, target?: string): never {
  throw new ArmFailure({ status, code, message, ...(target ? { target } : {}) });
}

export function invalid(message: string, target?: string): never {
  return fail(400, 'InvalidParameter', message, target);
}

/** DELETE of a gallery or definition that still holds definitions or versions. */
export function nestedResourcesExist(ids: string[]): never {
  return fail(
    409,
    'CannotDeleteResource',
    `Cannot delete resource while nested resources exist. Some existing nested resource IDs include: '${ids.slice(0, 5).join(', ')}'. Please delete all nested resources before deleting this resource.`,
  );
}

/** The body of a failed ARM call or long-running operation. */
export function armErrorBody(err: Omit<ArmError, 'status'>): { error: Omit<ArmError, 'status'> } {
  const { code, message, target, details } = err;
  return { error: { code, message, ...(target ? { target } : {}), ...(details ? { details } : {}) } };
}

/** The request and correlation ids ARM puts on every answer. */
export function armHeaders(extra: OutgoingHttpHeaders = {}): OutgoingHttpHeaders {
  const id = randomUUID();
  return { 'x-ms-request-id': id, 'x-ms-correlation-request-id': id, ...extra };
}

export function armErrorReply(err: ArmError, extra: OutgoingHttpHeaders = {}): BufferedReply {
  return jsonReply(err.status, armErrorBody(err), armHeaders(extra));
}

/**
 * A Blob service error as Storage writes it: XML body with the code, the message followed by the request
 * id and time, and the code again in `x-ms-error-code` (all a HEAD answer can carry).
 */
export function blobErrorReply(
  err: ErrorSpec & { details?: Record<string, string> },
  method: string,
): BufferedReply {
  const requestId = randomUUID();
  const headers = { 'x-ms-error-code': err.code, 'x-ms-request-id': requestId, 'x-ms-version': '2025-11-05' };
  if (method === 'HEAD')
    return { status: err.status, headers: { ...headers, 'content-length': 0 }, body: Buffer.alloc(0) };
  const message = `${err.message}\nRequestId:${requestId}\nTime:${new Date().toISOString()}`;
  return xmlReply(
    err.status,
    `<?xml version="1.0" encoding="utf-8"?><Error><Code>${escapeXml(err.code)}</Code>` +
      `<Message>${escapeXml(message)}</Message>` +
      Object.entries(err.details ?? {})
        .map(([k, v]) => `<${k}>${escapeXml(v)}</${k}>`)
        .join('') +
      '</Error>',
    { 'content-type': 'application/xml', ...headers },
  );
}

/** An Entra ID token endpoint error (OAuth 2.0 shape, AADSTS code in the description). */
export function identityErrorReply(status: number, error: string, description: string): BufferedReply {
  return jsonReply(status, {
    error,
    error_description: `${description}\r\nTrace ID: ${randomUUID()}\r\nCorrelation ID: ${randomUUID()}\r\nTimestamp: ${new Date().toISOString()}`,
    timestamp: new Date().toISOString(),
    trace_id: randomUUID(),
    correlation_id: randomUUID(),
  });
}

/**
 * What each Azure front answers an injected fault with. `blob`: Storage's own codes; `arm`: Resource
 * Manager's; `identity`: the token endpoint's OAuth errors (code = the `error` field).
 */
export const AZURE_FAULT_ERRORS: FaultErrorTable = {
  throttle: {
    blob: {
      code: 'ServerBusy',
      message: 'The server is currently unable to receive requests. Please retry your request.',
      status: 503,
    },
    arm: {
      code: 'TooManyRequests',
      message: 'The request is being throttled as the limit has been reached for operation type.',
      status: 429,
    },
    identity: {
      code: 'temporarily_unavailable',
      message:
        'AADSTS50196: The server terminated an operation because it encountered a client request loop.',
      status: 429,
    },
    default: { code: 'TooManyRequests', message: 'Too many requests.', status: 429 },
  },
  'server-error': {
    blob: {
      code: 'InternalError',
      message: 'The server encountered an internal error. Please retry the request.',
      status: 500,
    },
    arm: {
      code: 'InternalServerError',
      message: 'Encountered internal server error. Please try again.',
      status: 500,
    },
    identity: {
      code: 'server_error',
      message: 'AADSTS90033: A transient error has occurred. Please try again.',
      status: 500,
    },
    default: { code: 'InternalServerError', message: 'Internal server error.', status: 500 },
  },
  'access-denied': {
    blob: {
      code: 'AuthorizationFailure',
      message: 'This request is not authorized to perform this operation.',
      status: 403,
    },
    // The message names the client, action and scope: filled in by the ARM front.
    arm: { code: 'AuthorizationFailed', message: '', status: 403 },
    identity: {
      code: 'invalid_client',
      message: 'AADSTS7000215: Invalid client secret provided.',
      status: 401,
    },
    default: { code: 'AuthorizationFailed', message: 'Access denied.', status: 403 },
  },
};
