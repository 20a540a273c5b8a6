import { createVerify, randomBytes } from 'node:crypto';
import { jsonReply, type BufferedReply } from '../replies.js';
import { CLOCK_SKEW_S, GOOGLE_TOKEN_URL, MAX_ASSERTION_S, TOKEN_LIFETIME_S } from './config.js';
import { oauthErrorReply, type GoogleError } from './errors.js';
import type { ServiceAccount } from './service-account.js';

const JWT_BEARER = 'urn:ietf:params:oauth:grant-type:jwt-bearer';

function base64urlJson(part: string): Record<string, unknown> | undefined {
  try {
    const value: unknown = JSON.parse(Buffer.from(part, 'base64url').toString('utf8'));
    return typeof value === 'object' && value !== null ? (value as Record<string, unknown>) : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Google's OAuth 2.0 token endpoint for one service account: the JWT-bearer grant (RFC 7523) that
 * google-auth-library's JWT client uses. The assertion must be RS256-signed by the account's key (checked
 * with its public key), name the account as `iss`, carry a scope, be short-lived and current, and be meant
 * for Google's token endpoint or this one (`aud`). Tokens are opaque `ya29.` strings every other front checks.
 */
export class TokenIssuer {
  private tokens = new Map<string, number>();

  constructor(
    private readonly account: ServiceAccount,
    /** This endpoint's own URL: the key file's token_uri. */
    private readonly tokenUri: () => string,
  ) {}

  handle(form: URLSearchParams): BufferedReply {
    const grant = form.get('grant_type');
    if (grant !== JWT_BEARER)
      return oauthErrorReply(400, 'unsupported_grant_type', `Invalid grant_type: ${grant ?? ''}`);
    const assertion = form.get('assertion') ?? '';
    const parts = assertion.split('.');
    const header = parts.length === 3 ? base64urlJson(parts[0]!) : undefined;
    const claims = parts.length === 3 ? base64urlJson(parts[1]!) : undefined;
    if (!header || !claims) return oauthErrorReply(400, 'invalid_request', 'Invalid JWT: malformed');
    if (header.alg !== 'RS256')
      return oauthErrorReply(400, 'invalid_grant', 'Invalid JWT: unsupported algorithm');
    if (claims.iss !== this.account.email)
      return oauthErrorReply(400, 'invalid_grant', 'Invalid grant: account not found');
    const verify = createVerify('RSA-SHA256');
    verify.update(`${parts[0]}.${parts[1]}`);
    if (!verify.verify(this.account.publicKey, Buffer.from(parts[2]!, 'base64url')))
      return oauthErrorReply(400, 'invalid_grant', 'Invalid JWT Signature.');
    if (claims.aud !== GOOGLE_TOKEN_URL && claims.aud !== this.tokenUri())
      return oauthErrorReply(
        400,
        'invalid_grant',
        `Invalid JWT: Failed audience check. The right audience is ${GOOGLE_TOKEN_URL}`,
      );
    const now = Math.floor(Date.now() / 1000);
    const iat = Number(claims.iat);
    const exp = Number(claims.exp);
    if (
      !Number.isFinite(iat) ||
      !Number.isFinite(exp) ||
      exp <= iat ||
      exp - iat > MAX_ASSERTION_S ||
      iat > now + CLOCK_SKEW_S ||
      exp < now - CLOCK_SKEW_S
    )
      return oauthErrorReply(
        400,
        'invalid_grant',
        'Invalid JWT: Token must be a short-lived token (60 minutes) and in a reasonable timeframe. Check your iat and exp values in the JWT claim.',
      );
    if (typeof claims.scope !== 'string' || !claims.scope.trim())
      return oauthErrorReply(400, 'invalid_scope', 'Invalid OAuth scope or ID token audience provided.');
    return jsonReply(200, {
      access_token: this.issue(),
      expires_in: TOKEN_LIFETIME_S,
      token_type: 'Bearer',
    });
  }

  /** A new token, as the endpoint would grant it (the handle gives tests one this way). */
  issue(): string {
    const now = Date.now();
    // A long soak asks for many tokens: forget the expired ones now and then.
    if (this.tokens.size > 1000) for (const [t, exp] of this.tokens) if (exp <= now) this.tokens.delete(t);
    const token = `ya29.${randomBytes(48).toString('base64url')}`;
    this.tokens.set(token, now + TOKEN_LIFETIME_S * 1000);
    return token;
  }

  /** Google's 401 for a request without a valid token; undefined when the token is good. */
  check(authorization: string | undefined): GoogleError | undefined {
    const m = /^Bearer (\S+)$/i.exec(authorization ?? '');
    if (!m)
      return {
        status: 401,
        reason: 'required',
        message:
          'Request is missing required authentication credential. Expected OAuth 2 access token, login cookie or other valid authentication credential.',
        location: { locationType: 'header', location: 'Authorization' },
      };
    const expires = this.tokens.get(m[1]!);
    if (expires === undefined || expires <= Date.now())
      return {
        status: 401,
        reason: 'authError',
        message: 'Invalid Credentials',
        location: { locationType: 'header', location: 'Authorization' },
      };
    return undefined;
  }

  /** The account a valid token stands for (GCE shows it as an operation's `user`). */
  get user(): string {
    return this.account.email;
  }
}
