// recordRequest's log line: written when the logger writes info, not even built otherwise.
import { describe, expect, it } from 'vitest';
import { HealthRegistry } from '../../src/core/health/registry.js';
import { Router } from '../../src/core/router.js';
import { createLogger, type Logger, silentLogger } from '../../src/observe/log.js';
import { Metrics } from '../../src/observe/metrics.js';
import { recordRequest } from '../../src/pipeline/record.js';
import { compile, sampleFile } from '../helpers/config.js';

function planned(log: Logger) {
  const router = new Router({
    config: compile(sampleFile()),
    health: new HealthRegistry(),
    classify: () => ({ score: 0.1, reasons: [] }),
  });
  const plan = router.plan({
    body: JSON.stringify({ model: 'auto', messages: [{ role: 'user', content: 'hi' }] }),
  });
  return { plan, deps: { router, metrics: new Metrics({ defaultMetrics: false }), log } };
}

describe('the request log line', () => {
  it('is written at info', () => {
    const lines: string[] = [];
    const { plan, deps } = planned(createLogger('info', {}, (line) => lines.push(line)));
    const served = plan.candidates[0]!;
    recordRequest(
      deps,
      plan,
      { status: 200, attempts: [{ model: served, outcome: 'success' }], served },
      'r1',
    );
    expect(lines).toHaveLength(1);
    expect(JSON.parse(lines[0]!)).toMatchObject({
      msg: 'request',
      requestId: 'r1',
      status: 200,
      attempts: [`${served.id}:success`],
    });
  });

  it('is not built when info is not written', () => {
    const log: Logger = {
      ...silentLogger,
      info: () => {
        throw new Error('built');
      },
      enabled: (level) => level !== 'info' && level !== 'debug',
    };
    const { plan, deps } = planned(log);
    const served = plan.candidates[0]!;
    expect(() =>
      recordRequest(
        deps,
        plan,
        { status: 200, attempts: [{ model: served, outcome: 'success' }], served },
        'r2',
      ),
    ).not.toThrow();
  });
});
