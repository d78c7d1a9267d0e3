// The Gemini / Azure OpenAI / Bedrock setup shared by the gateway and sidecar end-to-end tests:
// mock servers, credentials, and one config with two cross-family policies.
import { compileConfig } from '../../src/core/config/compile.js';
import type { CompiledConfig, ProviderCredentials } from '../../src/core/config/compiled.js';
import { Secret } from '../../src/core/secret.js';
import { startAzureMock } from '../mocks/azure-mock.js';
import { startBedrockMock } from '../mocks/bedrock-mock.js';
import type { MockServer } from '../mocks/faults.js';
import { startGeminiMock } from '../mocks/gemini-mock.js';

export const GEMINI_KEY = 'AIzaSy-e2e-gemini-key';
export const AZURE_KEY = 'azure-e2e-key-123456';
export const AWS = {
  accessKeyId: 'AKIAE2ETESTKEY',
  secretAccessKey: 'e2e/secret+access+key',
  sessionToken: 'e2e-session-token',
};
export const REGION = 'eu-west-1';

export interface FamilyMocks {
  gemini: MockServer;
  azure: MockServer;
  bedrock: MockServer;
}

export async function startFamilyMocks(): Promise<FamilyMocks> {
  const [gemini, azure, bedrock] = await Promise.all([
    startGeminiMock({ apiKey: GEMINI_KEY }),
    startAzureMock({ apiKey: AZURE_KEY, deployments: ['prod-mini'] }),
    startBedrockMock({ credentials: AWS, region: REGION }),
  ]);
  return { gemini, azure, bedrock };
}

const pricing = (input: number, output: number) => ({ inputPerMTok: input, outputPerMTok: output });

export function familyConfigFile(mocks: FamilyMocks) {
  return {
    providers: [
      {
        name: 'google',
        type: 'gemini',
        baseUrl: mocks.gemini.url,
        credentials: { apiKeyEnv: 'GEMINI' },
        models: [
          {
            name: 'gemini-flash',
            upstreamModel: 'gemini-2.5-flash',
            tier: 'lightweight',
            pricing: pricing(0.3, 2.5),
            contextWindow: 1048576,
            maxOutputTokens: 65536,
            capabilities: ['tools', 'vision', 'jsonSchema', 'streaming'],
          },
        ],
      },
      {
        name: 'azure',
        type: 'azure-openai',
        baseUrl: mocks.azure.url,
        apiVersion: '2024-10-21',
        credentials: { apiKeyEnv: 'AZURE' },
        models: [
          {
            name: 'gpt-4.1-mini',
            upstreamModel: 'prod-mini',
            tier: 'lightweight',
            pricing: pricing(0.4, 1.6),
            contextWindow: 1047576,
            maxOutputTokens: 32768,
          },
        ],
      },
      {
        name: 'aws',
        type: 'bedrock',
        baseUrl: mocks.bedrock.url,
        region: REGION,
        credentials: {
          awsAccessKeyIdRef: { name: 'aws', key: 'id' },
          awsSecretAccessKeyRef: { name: 'aws', key: 'secret' },
          awsSessionTokenRef: { name: 'aws', key: 'token' },
        },
        models: [
          {
            name: 'nova-lite',
            upstreamModel: 'eu.amazon.nova-lite-v1:0',
            tier: 'lightweight',
            pricing: pricing(0.06, 0.24),
            contextWindow: 300000,
            maxOutputTokens: 10000,
          },
        ],
      },
    ],
    policies: [
      // Candidates in list order (no cost/latency weighting): gemini first, then bedrock.
      {
        name: 'gem-first',
        virtualModels: ['gem-first'],
        objective: { cost: 0, latency: 0 },
        tiers: [{ name: 'lightweight', models: ['google/gemini-flash', 'aws/nova-lite'] }],
      },
      // Bedrock first, then Azure.
      {
        name: 'aws-first',
        virtualModels: ['aws-first'],
        objective: { cost: 0, latency: 0 },
        tiers: [{ name: 'lightweight', models: ['aws/nova-lite', 'azure/gpt-4.1-mini'] }],
      },
    ],
  };
}

export function compileFamilies(mocks: FamilyMocks): CompiledConfig {
  const env: Record<string, string> = { GEMINI: GEMINI_KEY, AZURE: AZURE_KEY };
  const r = compileConfig(familyConfigFile(mocks), {
    resolveCredentials: (_p, spec): ProviderCredentials => {
      const c: ProviderCredentials = {};
      if (spec.apiKeyEnv) c.apiKey = new Secret(env[spec.apiKeyEnv]!);
      if (spec.awsAccessKeyIdRef) c.awsAccessKeyId = new Secret(AWS.accessKeyId);
      if (spec.awsSecretAccessKeyRef) c.awsSecretAccessKey = new Secret(AWS.secretAccessKey);
      if (spec.awsSessionTokenRef) c.awsSessionToken = new Secret(AWS.sessionToken);
      return c;
    },
  });
  if (!r.config) throw new Error(`config: ${JSON.stringify(r.issues)}`);
  return r.config;
}
