// Microsoft Entra tokens for Azure OpenAI against a local token endpoint that speaks the v2.0
// client-credentials grant: the form TierFlow sends, refresh before expiry, backoff on failure,
// nothing secret in the log; and end to end through the gateway with the official SDK.
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import OpenAI from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EntraToken, EntraTokens, entraSettings } from '../../src/config/entra.js';
import { Secret } from '../../src/core/secret.js';
import { createLogger } from '../../src/observe/log.js';
import { model } from '../helpers/config.js';
import { startTestGateway } from '../helpers/gateway.js';
import { startAzureMock } from '../mocks/azure-mock.js';

interface TokenRequest {
  path: string;
  form: Record<string, string>;
}

/** A token endpoint: answers with the scripted reply, or a fresh token valid for `expiresIn` s. */
class TokenServer {
  readonly requests: TokenRequest[] = [];
  reply: { status: number; body: unknown } | undefined;
  expiresIn = 3600;
  /** How long the endpoint takes to answer. */
  delayMs = 0;
  #server: Server | undefined;
  /** Tokens issued per client id (token names: tok-<client>-<n>). */
  readonly #issued = new Map<string, number>();
  url = '';

  async start(): Promise<void> {
    this.#server = createServer((req, res) => {
      let text = '';
      req.on('data', (c: Buffer) => (text += c.toString()));
      req.on('end', () => {
        const form = Object.fromEntries(new URLSearchParams(text));
        this.requests.push({ path: req.url ?? '', form });
        const n = (this.#issued.get(form.client_id!) ?? 0) + 1;
        this.#issued.set(form.client_id!, n);
        const r = this.reply ?? {
          status: 200,
          body: {
            token_type: 'Bearer',
            expires_in: this.expiresIn,
            access_token: `tok-${form.client_id}-${n}`,
          },
        };
        setTimeout(() => {
          res.writeHead(r.status, { 'content-type': 'application/json' });
          res.end(JSON.stringify(r.body));
        }, this.delayMs);
      });
    });
    await new Promise<void>((r) => this.#server!.listen(0, '127.0.0.1', r));
    this.url = `http://127.0.0.1:${(this.#server.address() as { port: number }).port}`;
  }

  close(): Promise<void> {
    return new Promise((r) => this.#server?.close(() => r()) ?? r());
  }
}

const dir = mkdtempSync(join(tmpdir(), 'tierflow-entra-'));
const tokenFile = join(dir, 'token');
const server = new TokenServer();
beforeAll(() => server.start());
afterAll(() => server.close());

function capture() {
  const lines: string[] = [];
  return { log: createLogger('debug', {}, (l) => lines.push(l)), lines };
}

describe('entraSettings', () => {
  it('completes the spec from the standard Azure environment', () => {
    const s = entraSettings(
      {},
      {
        AZURE_TENANT_ID: 'tenant-1',
        AZURE_CLIENT_ID: 'client-1',
        AZURE_FEDERATED_TOKEN_FILE: '/var/run/secrets/azure/tokens/azure-identity-token',
        AZURE_AUTHORITY_HOST: 'https://login.microsoftonline.com/',
      },
      undefined,
    );
    expect(s).toEqual({
      tokenUrl: 'https://login.microsoftonline.com/tenant-1/oauth2/v2.0/token',
      clientId: 'client-1',
      scope: 'https://cognitiveservices.azure.com/.default',
      federatedTokenFile: '/var/run/secrets/azure/tokens/azure-identity-token',
    });
  });

  it('says what is missing', () => {
    expect(() => entraSettings({}, {}, undefined)).toThrow(/tenantId/);
    expect(() => entraSettings({ tenantId: 't' }, {}, undefined)).toThrow(/clientId/);
    expect(() => entraSettings({ tenantId: 't', clientId: 'c' }, {}, undefined)).toThrow(
      /federatedTokenFile/,
    );
    expect(() => entraSettings({ tenantId: '../x', clientId: 'c' }, {}, new Secret('s'))).toThrow(/tenantId/);
  });
});

describe('EntraToken', () => {
  it('exchanges the workload-identity token file for an access token, and re-reads the file', async () => {
    writeFileSync(tokenFile, 'federated-jwt-1\n');
    let now = 1_000_000;
    const { log } = capture();
    const token = new EntraToken(
      entraSettings(
        {
          tenantId: 'tenant-1',
          clientId: 'client-1',
          federatedTokenFile: tokenFile,
          authorityHost: server.url,
        },
        {},
        undefined,
      ),
      log,
      () => now,
    );
    server.requests.length = 0;
    server.expiresIn = 600;
    expect(token.reveal()).toBe(''); // nothing yet: the fetch has started
    await token.refresh();
    expect(token.reveal()).toBe('tok-client-1-1');
    expect(server.requests[0]).toEqual({
      path: '/tenant-1/oauth2/v2.0/token',
      form: {
        grant_type: 'client_credentials',
        client_id: 'client-1',
        scope: 'https://cognitiveservices.azure.com/.default',
        client_assertion_type: 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer',
        client_assertion: 'federated-jwt-1',
      },
    });
    // still fresh: no new request
    now += 200_000;
    expect(token.reveal()).toBe('tok-client-1-1');
    expect(server.requests).toHaveLength(1);
    // within five minutes of expiry: the old token is served while a new one is fetched
    writeFileSync(tokenFile, 'federated-jwt-2');
    now += 150_000;
    expect(token.reveal()).toBe('tok-client-1-1');
    await token.refresh();
    expect(token.reveal()).toBe('tok-client-1-2');
    expect(server.requests[1]!.form.client_assertion).toBe('federated-jwt-2');
    expect(String(token)).toBe('[redacted]');
  });

  it('uses a client secret, backs off after a failure, and never logs the secret', async () => {
    let now = 5_000_000;
    const { log, lines } = capture();
    const token = new EntraToken(
      entraSettings(
        { tenantId: 'tenant-2', clientId: 'client-2', authorityHost: server.url },
        {},
        new Secret('s3cr3t-value'),
      ),
      log,
      () => now,
    );
    server.requests.length = 0;
    server.reply = {
      status: 401,
      body: {
        error: 'invalid_client',
        error_description: 'AADSTS7000215: Invalid client secret provided.\nTrace ID: x',
      },
    };
    expect(token.reveal()).toBe('');
    await token.refresh();
    expect(server.requests[0]!.form.client_secret).toBe('s3cr3t-value');
    expect(token.reveal()).toBe('');
    expect(server.requests).toHaveLength(1); // backing off: no second request yet
    const text = lines.join('\n');
    expect(text).toContain('invalid_client');
    expect(text).toContain('AADSTS7000215');
    expect(text).not.toContain('s3cr3t-value');
    now += 2_100; // first retry after 2 s
    server.reply = undefined;
    server.expiresIn = 3600;
    token.reveal();
    await token.refresh();
    expect(token.reveal()).toMatch(/^tok-client-2-/);
    // an expired token is never served, even while renewing fails
    server.reply = { status: 500, body: {} };
    now += 3_600_000;
    expect(token.reveal()).toBe('');
    server.reply = undefined;
  });

  it('is shared by every provider and reload with the same identity', () => {
    const tokens = new EntraTokens(capture().log);
    const a = entraSettings(
      { tenantId: 't', clientId: 'c', authorityHost: server.url },
      {},
      new Secret('one'),
    );
    const b = entraSettings(
      { tenantId: 't', clientId: 'c', authorityHost: server.url },
      {},
      new Secret('one'),
    );
    const c = entraSettings(
      { tenantId: 't', clientId: 'c', authorityHost: server.url },
      {},
      new Secret('two'),
    );
    expect(tokens.get(a)).toBe(tokens.get(b));
    expect(tokens.get(c)).not.toBe(tokens.get(a));
  });
});

describe('gateway with an azure-openai provider that authenticates with Entra', () => {
  it('fetches the token itself and sends it as a bearer token', async () => {
    writeFileSync(tokenFile, 'federated-jwt-gw');
    server.requests.length = 0;
    server.expiresIn = 3600;
    server.delayMs = 300;
    const azure = await startAzureMock({ entraToken: 'tok-client-gw-1', deployments: ['prod-mini'] });
    const gw = await startTestGateway({
      providers: [
        {
          name: 'azure',
          type: 'azure-openai',
          baseUrl: azure.url,
          auth: 'entra',
          credentials: {
            entra: {
              tenantId: 'tenant-gw',
              clientId: 'client-gw',
              federatedTokenFile: tokenFile,
              authorityHost: server.url,
            },
          },
          models: [model('gpt-4.1-mini', 'lightweight', 0.4, 1.6, { upstreamModel: 'prod-mini' })],
        },
      ],
      policies: [{ name: 'default', virtualModels: ['auto'], tiers: [{ name: 'lightweight' }] }],
    });
    try {
      const sdk = new OpenAI({ baseURL: gw.baseURL, apiKey: 'unused', maxRetries: 0 });
      const ask = () =>
        sdk.chat.completions.create({ model: 'auto', messages: [{ role: 'user', content: 'hi' }] });
      // Until the first token has arrived the provider answers 503 credentials_unavailable (nothing
      // is sent to Azure); the fetch started with the config, so that state ends without a request.
      let r: Awaited<ReturnType<typeof ask>> | undefined;
      let unavailable = 0;
      for (let i = 0; i < 200 && !r; i++) {
        r = await ask().catch((err: unknown) => {
          if ((err as { code?: unknown }).code !== 'credentials_unavailable') throw err;
          unavailable++;
          return new Promise<undefined>((done) => setTimeout(() => done(undefined), 10));
        });
      }
      expect(unavailable).toBeGreaterThan(0);
      expect(azure.requests.filter((q) => q.headers.authorization !== 'Bearer tok-client-gw-1')).toEqual([]);
      expect(r!.choices[0]!.message.content).toContain('hi');
      expect(azure.lastRequest!.headers.authorization).toBe('Bearer tok-client-gw-1');
      const gwRequests = server.requests.filter((q) => q.form.client_id === 'client-gw');
      expect(gwRequests.map((q) => q.form.client_assertion)).toEqual(['federated-jwt-gw']);
    } finally {
      await gw.close();
      await azure.close();
    }
  });
});

describe('Entra credentials in Kubernetes', () => {
  it('mounts the client-secret Secret and resolves the provider to a refreshing token', async () => {
    const { referencedSecretNames, mountedSecretResolvers } = await import('../../src/k8s/secrets.js');
    const spec = {
      type: 'azure-openai',
      auth: 'entra',
      credentials: {
        entra: {
          tenantId: 't-k8s',
          clientId: 'client-k8s',
          clientSecretRef: { name: 'azure-app', key: 'secret' },
        },
      },
    };
    expect(referencedSecretNames([spec])).toEqual(['azure-app']);
    const secrets = mkdtempSync(join(tmpdir(), 'tierflow-secrets-'));
    mkdirSync(join(secrets, 'azure-app'));
    writeFileSync(join(secrets, 'azure-app', 'secret'), 'k8s-client-secret\n');
    const tokens = new EntraTokens(capture().log);
    const creds = mountedSecretResolvers(secrets, tokens, {
      AZURE_AUTHORITY_HOST: server.url,
    }).resolveCredentials('azure', spec.credentials);
    expect(creds.apiKey).toBeInstanceOf(EntraToken);
    await (creds.apiKey as EntraToken).refresh();
    expect(creds.apiKey!.reveal()).toMatch(/^tok-client-k8s-/);
    const sent = server.requests.find((q) => q.form.client_id === 'client-k8s')!;
    expect(sent.path).toBe('/t-k8s/oauth2/v2.0/token');
    expect(sent.form.client_secret).toBe('k8s-client-secret');
  });
});
