// The seam for routing signals: a new step of a policy's decision is written once, sees the whole
// request (body, headers, virtual key), and gets it the same way from both data planes.
import OpenAI from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { HealthRegistry } from '../../src/core/health/registry.js';
import {
  classifyStep,
  POLICY_STEPS,
  type PolicyStep,
  selectStep,
  stickinessStep,
  thresholdStep,
} from '../../src/core/policy-steps.js';
import { headerValue } from '../../src/core/route-request.js';
import { Router } from '../../src/core/router.js';
import { createGateway, type Gateway } from '../../src/gateway/server.js';
import { silentLogger } from '../../src/observe/log.js';
import { Metrics } from '../../src/observe/metrics.js';
import { UpstreamClient } from '../../src/pipeline/client.js';
import { compile, sampleFile } from '../helpers/config.js';
import { type SidecarUnderTest, startSidecar } from '../extproc/sidecar.js';
import type { MockServer } from '../mocks/faults.js';
import { startAnthropicMock } from '../mocks/anthropic-mock.js';
import { startOpenAIMock } from '../mocks/openai-mock.js';

/** A client's hint header: `x-client-complexity: high` sends the request to the policy's last tier. */
const hintStep: PolicyStep = (d) => {
  if (headerValue(d.headers, 'x-client-complexity') === 'high') {
    d.tierIndex = Math.max(d.tierIndex, d.policy.tiers.length - 1);
    d.reasons = [...d.reasons, 'client_hint'];
  }
};

/** The shipped steps with the hint joined before stickiness and selection: the one place it is added. */
const withHint = [classifyStep, thresholdStep, hintStep, stickinessStep, selectStep];

const body = (content: string) => JSON.stringify({ model: 'auto', messages: [{ role: 'user', content }] });
const lowScore = () => ({ score: 0.1, reasons: ['test'] });

describe('Router policy steps', () => {
  it('the shipped steps are classify, threshold, stickiness, select, in that order', () => {
    expect(POLICY_STEPS).toEqual([classifyStep, thresholdStep, stickinessStep, selectStep]);
  });

  it('a step added to the list routes on a header; without the step the header changes nothing', () => {
    const config = compile(sampleFile());
    const hinted = new Router({
      config,
      health: new HealthRegistry(),
      classify: lowScore,
      policySteps: withHint,
    });
    const plain = new Router({ config, health: new HealthRegistry(), classify: lowScore });
    const headers = { 'x-client-complexity': 'high' };
    const up = hinted.plan({ body: body('hi'), headers });
    expect(up.tier).toBe('flagship');
    expect(up.score).toBe(0.1);
    expect(up.reasons).toEqual(['test', 'client_hint']);
    expect(up.candidates[0]!.tier).toBe('flagship');
    expect(hinted.plan({ body: body('hi') }).tier).toBe('lightweight');
    expect(hinted.plan({ body: body('hi'), headers: { 'x-client-complexity': 'low' } }).tier).toBe(
      'lightweight',
    );
    expect(plain.plan({ body: body('hi'), headers }).tier).toBe('lightweight');
  });

  it('authorization comes from the request headers (a string, or a list as Node may keep one)', () => {
    const file = sampleFile();
    file.virtualKeys = [{ name: 'team-a', key: 'tf-team-a' }];
    const router = new Router({ config: compile(file), health: new HealthRegistry(), classify: lowScore });
    expect(() => router.plan({ body: body('hi') })).toThrow(expect.objectContaining({ status: 401 }));
    expect(
      router.plan({ body: body('hi'), headers: { authorization: 'Bearer tf-team-a' } }).virtualKey?.name,
    ).toBe('team-a');
    expect(
      router.plan({ body: body('hi'), headers: { authorization: ['Bearer tf-team-a'] } }).virtualKey?.name,
    ).toBe('team-a');
  });

  it('takes a request already parsed (another API converted to the chat shape)', async () => {
    const { parseChatRequest } = await import('../../src/core/parse.js');
    const router = new Router({
      config: compile(sampleFile()),
      health: new HealthRegistry(),
      classify: lowScore,
    });
    const parsed = parseChatRequest(body('hi'));
    const plan = router.plan({ body: parsed });
    expect(plan.request).toBe(parsed);
    expect(plan.tier).toBe('lightweight');
  });
});

describe('both data planes hand the router the client headers', () => {
  let alpha: MockServer;
  let beta: MockServer;
  let upstream: UpstreamClient;
  let gateway: Gateway;
  let sidecar: SidecarUnderTest;
  const seen: Array<string | undefined> = [];
  const recordTenant: PolicyStep = (d) => {
    seen.push(headerValue(d.headers, 'x-tenant'));
  };

  beforeAll(async () => {
    alpha = await startOpenAIMock({ apiKey: 'sk-alpha-secret' });
    beta = await startAnthropicMock({ apiKey: 'sk-beta-secret' });
    upstream = new UpstreamClient();
    const router = () =>
      new Router({
        config: compile(sampleFile({ alpha: alpha.url, beta: beta.url })),
        health: new HealthRegistry(),
        classify: lowScore,
        policySteps: [recordTenant, ...withHint],
      });
    const deps = () => ({
      router: router(),
      metrics: new Metrics({ defaultMetrics: false }),
      log: silentLogger,
      client: upstream,
    });
    gateway = createGateway(deps());
    await gateway.listen(0, '127.0.0.1');
    sidecar = await startSidecar(deps());
  });

  afterAll(async () => {
    await sidecar?.close();
    await gateway?.close(1000);
    await upstream?.close();
    await alpha?.close();
    await beta?.close();
  });

  it.each(['gateway', 'sidecar'] as const)(
    '%s: a header reaches the steps and the hint routes',
    async (plane) => {
      const address = plane === 'gateway' ? gateway.server.address() : undefined;
      const base =
        plane === 'gateway' && address && typeof address === 'object'
          ? `http://127.0.0.1:${address.port}/v1`
          : `${sidecar.url}/v1`;
      const client = new OpenAI({ baseURL: base, apiKey: 'sk-client-dummy', maxRetries: 0 });
      seen.length = 0;
      const { response } = await client.chat.completions
        .create(
          { model: 'auto', messages: [{ role: 'user', content: 'Say hello.' }] },
          { headers: { 'x-tenant': 'acme', 'x-client-complexity': 'high' } },
        )
        .withResponse();
      expect(seen).toEqual(['acme']);
      expect(response.headers.get('x-tierflow-tier')).toBe('flagship');
      const { response: plain } = await client.chat.completions
        .create({ model: 'auto', messages: [{ role: 'user', content: 'Say hello.' }] })
        .withResponse();
      expect(seen).toEqual(['acme', undefined]);
      expect(plain.headers.get('x-tierflow-tier')).toBe('lightweight');
    },
  );
});
