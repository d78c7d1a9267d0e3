// Microsoft Entra ID access tokens for Azure OpenAI (`auth: entra` with `credentials.entra`):
// the OAuth 2.0 client-credentials grant against {authorityHost}/{tenant}/oauth2/v2.0/token,
// authenticated by a workload-identity token file (a federated credential: the file's JWT is the
// client_assertion) or by a client secret.
//
// The token is a Secret whose reveal() returns the current access token and, when it is missing
// or within REFRESH_BEFORE_MS of expiring, starts one refresh in the background: no timers, so a
// token nobody asks for any more costs nothing. Until the first token arrives reveal() returns ''
// and the Azure translator skips the provider (next candidate), so a request is never sent
// without a credential. Failures are retried with backoff and logged without secrets.
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import type { EntraSpec } from '../core/config/schema.js';
import { rememberSecret } from '../core/redact.js';
import { Secret } from '../core/secret.js';
import type { Logger } from '../observe/log.js';

export const DEFAULT_AUTHORITY_HOST = 'https://login.microsoftonline.com';
export const COGNITIVE_SERVICES_SCOPE = 'https://cognitiveservices.azure.com/.default';
const REFRESH_BEFORE_MS = 5 * 60_000;
const FIRST_RETRY_MS = 2_000;
const MAX_RETRY_MS = 60_000;
const REQUEST_TIMEOUT_MS = 10_000;

export interface EntraSettings {
  tokenUrl: string;
  clientId: string;
  scope: string;
  /** Workload identity: file holding the JWT sent as client_assertion (re-read on every refresh). */
  federatedTokenFile?: string;
  clientSecret?: Secret;
}

/**
 * The settings of a provider's `credentials.entra`, completed from the standard Azure
 * environment (AZURE_TENANT_ID, AZURE_CLIENT_ID, AZURE_FEDERATED_TOKEN_FILE, AZURE_AUTHORITY_HOST,
 * as the AKS workload-identity webhook sets them). Throws when something required is missing.
 */
export function entraSettings(
  spec: EntraSpec,
  env: Record<string, string | undefined>,
  clientSecret: Secret | undefined,
): EntraSettings {
  const tenantId = spec.tenantId ?? env.AZURE_TENANT_ID;
  const clientId = spec.clientId ?? env.AZURE_CLIENT_ID;
  if (!tenantId) throw new Error('entra: tenantId is not set (nor AZURE_TENANT_ID)');
  if (!clientId) throw new Error('entra: clientId is not set (nor AZURE_CLIENT_ID)');
  if (!/^[A-Za-z0-9.-]+$/.test(tenantId)) throw new Error('entra: tenantId must be a tenant id or domain');
  const authority = (spec.authorityHost ?? env.AZURE_AUTHORITY_HOST ?? DEFAULT_AUTHORITY_HOST).replace(
    /\/+$/,
    '',
  );
  const settings: EntraSettings = {
    tokenUrl: `${authority}/${tenantId}/oauth2/v2.0/token`,
    clientId,
    scope: spec.scope ?? COGNITIVE_SERVICES_SCOPE,
  };
  if (clientSecret) {
    settings.clientSecret = clientSecret;
  } else {
    const file = spec.federatedTokenFile ?? env.AZURE_FEDERATED_TOKEN_FILE;
    if (!file) {
      throw new Error(
        'entra: give a client secret (clientSecretRef / clientSecretEnv) or a federatedTokenFile (nor AZURE_FEDERATED_TOKEN_FILE)',
      );
    }
    settings.federatedTokenFile = file;
  }
  return settings;
}

/** An Entra access token that keeps itself fresh. */
export class EntraToken extends Secret {
  readonly #settings: EntraSettings;
  readonly #log: Pick<Logger, 'warn'>;
  readonly #now: () => number;
  #token = '';
  #expiresAt = 0;
  #inFlight: Promise<void> | undefined;
  #retryAt = 0;
  #retryMs = FIRST_RETRY_MS;

  constructor(settings: EntraSettings, log: Pick<Logger, 'warn'>, now: () => number = Date.now) {
    super('');
    this.#settings = settings;
    this.#log = log;
    this.#now = now;
  }

  override reveal(): string {
    const now = this.#now();
    if (now >= this.#expiresAt) this.#token = '';
    if (now >= this.#expiresAt - REFRESH_BEFORE_MS && now >= this.#retryAt) void this.refresh();
    return this.#token;
  }

  /** Fetches a token now (or joins the fetch under way). Never throws. */
  refresh(): Promise<void> {
    this.#inFlight ??= this.#fetch().finally(() => (this.#inFlight = undefined));
    return this.#inFlight;
  }

  async #fetch(): Promise<void> {
    const s = this.#settings;
    try {
      const form = new URLSearchParams({
        grant_type: 'client_credentials',
        client_id: s.clientId,
        scope: s.scope,
      });
      if (s.clientSecret) {
        form.set('client_secret', s.clientSecret.reveal());
      } else {
        form.set('client_assertion_type', 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer');
        form.set('client_assertion', readFileSync(s.federatedTokenFile!, 'utf8').trim());
      }
      const res = await fetch(s.tokenUrl, {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        body: form,
        signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS),
      });
      const body = (await res.json().catch(() => ({}))) as Record<string, unknown>;
      const token = body.access_token;
      const expiresIn = Number(body.expires_in);
      if (!res.ok || typeof token !== 'string' || !token || !(expiresIn > 0)) {
        // error and error_description are Entra's codes and explanation; they hold no secret
        const code = typeof body.error === 'string' ? body.error : 'no access_token';
        const why = typeof body.error_description === 'string' ? body.error_description.split('\n')[0]! : '';
        throw new Error(
          `token endpoint answered ${res.status} ${code}${why ? `: ${why.slice(0, 200)}` : ''}`,
        );
      }
      rememberSecret(token);
      this.#token = token;
      this.#expiresAt = this.#now() + expiresIn * 1000;
      this.#retryAt = 0;
      this.#retryMs = FIRST_RETRY_MS;
    } catch (err) {
      this.#retryAt = this.#now() + this.#retryMs;
      this.#log.warn('entra_token_failed', {
        tokenUrl: s.tokenUrl,
        clientId: s.clientId,
        error: (err as Error).message,
        retryInMs: this.#retryMs,
        haveToken: this.#token !== '',
      });
      this.#retryMs = Math.min(this.#retryMs * 2, MAX_RETRY_MS);
    }
  }
}

/**
 * One token per identity, shared by every provider and config reload that uses it (a reload
 * does not fetch a new token).
 */
export class EntraTokens {
  readonly #tokens = new Map<string, EntraToken>();
  constructor(
    private readonly log: Pick<Logger, 'warn'>,
    private readonly now: () => number = Date.now,
  ) {}

  get(settings: EntraSettings): EntraToken {
    const identity = [
      settings.tokenUrl,
      settings.clientId,
      settings.scope,
      settings.federatedTokenFile ?? '',
      settings.clientSecret ? createHash('sha256').update(settings.clientSecret.reveal()).digest('hex') : '',
    ].join('\n');
    let token = this.#tokens.get(identity);
    if (!token) {
      token = new EntraToken(settings, this.log, this.now);
      this.#tokens.set(identity, token);
      void token.refresh();
    }
    return token;
  }
}
