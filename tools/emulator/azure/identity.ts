import { randomBytes, timingSafeEqual } from 'node:crypto';
import { jsonReply, type BufferedReply } from '../replies.js';
import { TOKEN_LIFETIME_S } from './config.js';
import { identityErrorReply, type ArmError } from './errors.js';

export interface AppRegistration {
  tenantId: string;
  clientId: string;
  clientSecret: string;
}

/** The identity routes: OpenID metadata and the token endpoint, under /{tenant}/ as on Entra ID. */
export function identityOperation(method: string, pathname: string): string | undefined {
  if (method === 'GET' && /^\/[^/]+\/v2\.0\/\.well-known\/openid-configuration$/.test(pathname)) {
    return 'OpenIdConfiguration';
  }
  if (method === 'POST' && /^\/[^/]+\/oauth2\/v2\.0\/token$/.test(pathname)) return 'GetToken';
  return undefined;
}

function same(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}

/**
 * A one-application Entra ID: @azure/identity's ClientSecretCredential, given this front as its
 * `authorityHost`, reads the tenant's OpenID metadata and gets tokens for the client-credentials grant here.
 * Tokens are opaque random strings the ARM front accepts until they expire.
 */
export class TokenIssuer {
  private tokens = new Map<string, number>();

  constructor(
    readonly app: AppRegistration,
    private readonly baseUrl: () => string,
  ) {}

  handle(operation: string, pathname: string, form: URLSearchParams): BufferedReply {
    const tenant = pathname.split('/')[1] ?? '';
    if (tenant !== this.app.tenantId) {
      return identityErrorReply(400, 'invalid_tenant', `AADSTS90002: Tenant '${tenant}' not found.`);
    }
    const base = `${this.baseUrl()}/${tenant}`;
    if (operation === 'OpenIdConfiguration') {
      return jsonReply(200, {
        issuer: `${base}/v2.0`,
        authorization_endpoint: `${base}/oauth2/v2.0/authorize`,
        token_endpoint: `${base}/oauth2/v2.0/token`,
        jwks_uri: `${base}/discovery/v2.0/keys`,
        end_session_endpoint: `${base}/oauth2/v2.0/logout`,
        response_types_supported: ['code', 'id_token', 'code id_token', 'id_token token'],
        token_endpoint_auth_methods_supported: [
          'client_secret_post',
          'private_key_jwt',
          'client_secret_basic',
        ],
        tenant_region_scope: 'WW',
      });
    }
    return this.token(form);
  }

  private token(form: URLSearchParams): BufferedReply {
    const grant = form.get('grant_type');
    if (grant !== 'client_credentials') {
      return identityErrorReply(
        400,
        'unsupported_grant_type',
        `AADSTS70003: The app requested an unsupported grant type '${grant ?? ''}'.`,
      );
    }
    const clientId = form.get('client_id') ?? '';
    if (clientId !== this.app.clientId) {
      return identityErrorReply(
        400,
        'unauthorized_client',
        `AADSTS700016: Application with identifier '${clientId}' was not found in the directory '${this.app.tenantId}'.`,
      );
    }
    if (!same(form.get('client_secret') ?? '', this.app.clientSecret)) {
      return identityErrorReply(
        401,
        'invalid_client',
        `AADSTS7000215: Invalid client secret provided. Ensure the secret being sent in the request is the client secret value, not the client secret ID, for a secret added to app '${clientId}'.`,
      );
    }
    const scope = form.get('scope') ?? '';
    if (!scope.split(' ').every((s) => s.endsWith('/.default'))) {
      return identityErrorReply(
        400,
        'invalid_scope',
        `AADSTS1002012: The provided value for scope ${scope} is not valid. Client credential flows must have a scope value with /.default suffixed to the resource identifier (application ID URI).`,
      );
    }
    const now = Date.now();
    // A long soak asks for many tokens: forget the expired ones now and then.
    if (this.tokens.size > 1000) for (const [t, exp] of this.tokens) if (exp <= now) this.tokens.delete(t);
    const token = randomBytes(32).toString('base64url');
    this.tokens.set(token, now + TOKEN_LIFETIME_S * 1000);
    return jsonReply(200, {
      token_type: 'Bearer',
      expires_in: TOKEN_LIFETIME_S,
      ext_expires_in: TOKEN_LIFETIME_S,
      access_token: token,
    });
  }

  /** The ARM error for a request whose Authorization header is missing, malformed, unknown or expired. */
  check(authorization: string | undefined): ArmError | undefined {
    if (!authorization) {
      return {
        status: 401,
        code: 'AuthenticationFailed',
        message: "Authentication failed. The 'Authorization' header is missing.",
      };
    }
    const m = /^Bearer ([A-Za-z0-9._~+/=-]+)$/.exec(authorization);
    if (!m) {
      return {
        status: 401,
        code: 'AuthenticationFailedInvalidHeader',
        message: "Authentication failed. The 'Authorization' header is provided in an invalid format.",
      };
    }
    const expires = this.tokens.get(m[1]!);
    if (expires === undefined) {
      return { status: 401, code: 'InvalidAuthenticationToken', message: 'The access token is invalid.' };
    }
    if (expires <= Date.now()) {
      this.tokens.delete(m[1]!);
      return {
        status: 401,
        code: 'ExpiredAuthenticationToken',
        message: `The access token expiry UTC time '${new Date(expires).toISOString()}' is earlier than current UTC time '${new Date().toISOString()}'.`,
      };
    }
    return undefined;
  }
}
