import type { OutgoingHttpHeaders } from 'node:http';
import { jsonReply, type BufferedReply, type FaultErrorTable } from '../replies.js';

/**
 * Google's JSON API error, as Compute Engine and Cloud Storage both write it:
 * `{"error":{"code":404,"message":"...","errors":[{"message":"...","domain":"global","reason":"notFound"}]}}`.
 * The clients read `code` for the status and `errors[0].reason` for what went wrong.
 */
export interface GoogleError {
  status: number;
  reason: string;
  message: string;
  /** Where in the request the problem is (Storage names the Authorization header this way). */
  location?: { locationType: string; location: string };
}

/** Thrown by handlers; the front turns it into the error reply. */
export class ApiFailure extends Error {
  constructor(readonly error: GoogleError) {
    super(error.message);
  }
}

export function fail(status: number, reason: string, message: string): never {
  throw new ApiFailure({ status, reason, message });
}

/** 404 for a resource path such as `projects/p/global/images/n`, in Compute Engine's words. */
export function notFound(resource: string): never {
  return fail(404, 'notFound', `The resource '${resource}' was not found`);
}

/** 400 for a field that does not hold, in Compute Engine's words. */
export function invalidField(field: string, value: unknown, why: string): never {
  return fail(400, 'invalid', `Invalid value for field '${field}': '${String(value)}'. ${why}`);
}

export function googleErrorBody(err: GoogleError) {
  return {
    error: {
      code: err.status,
      message: err.message,
      errors: [{ message: err.message, domain: 'global', reason: err.reason, ...(err.location ?? {}) }],
    },
  };
}

export function googleErrorReply(err: GoogleError, extra: OutgoingHttpHeaders = {}): BufferedReply {
  return jsonReply(err.status, googleErrorBody(err), extra);
}

/** An OAuth 2.0 token endpoint error, as Google's writes it: `{"error","error_description"}`. */
export function oauthErrorReply(status: number, error: string, description: string): BufferedReply {
  return jsonReply(status, { error, error_description: description });
}

/**
 * What each front answers an injected fault with: `code` is Google's `reason`. `compute` and `storage` in
 * the JSON API shape; `oauth` is the token endpoint's (code = its `error` field).
 */
export const GCP_FAULT_ERRORS: FaultErrorTable = {
  throttle: {
    compute: {
      code: 'rateLimitExceeded',
      message:
        "Quota exceeded for quota metric 'Queries' and limit 'Queries per minute' of service 'compute.googleapis.com'.",
      status: 429,
    },
    storage: {
      code: 'rateLimitExceeded',
      message: 'The project exceeded the rate limit for CloudStorage and this operation.',
      status: 429,
    },
    oauth: { code: 'rate_limit_exceeded', message: 'Rate limit exceeded.', status: 429 },
    default: { code: 'rateLimitExceeded', message: 'Rate Limit Exceeded', status: 429 },
  },
  'server-error': {
    compute: {
      code: 'backendError',
      message: 'Internal error. Please try again or contact Google Support.',
      status: 500,
    },
    storage: {
      code: 'backendError',
      message: 'We encountered an internal error. Please try again.',
      status: 503,
    },
    oauth: { code: 'internal_failure', message: 'Internal error.', status: 500 },
    default: { code: 'backendError', message: 'Backend Error', status: 500 },
  },
  'access-denied': {
    // The message names the permission and the resource: filled in by each front.
    compute: { code: 'forbidden', message: '', status: 403 },
    storage: { code: 'forbidden', message: '', status: 403 },
    oauth: { code: 'invalid_grant', message: 'Invalid grant: account not found', status: 400 },
    default: { code: 'forbidden', message: 'Forbidden', status: 403 },
  },
};
