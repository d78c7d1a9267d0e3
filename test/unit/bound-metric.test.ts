import { Counter, Registry } from 'prom-client';
import { describe, expect, it } from 'vitest';
import { BoundCounter } from '../../src/observe/bound-metric.js';

// Two registries get the same updates, one through prom-client's own calls, one through bound
// counters: the exposition must be the same text, whatever prom-client keeps inside.
function pair() {
  const make = () => {
    const registry = new Registry();
    const counter = new Counter({
      name: 't_requests_total',
      help: 'h',
      labelNames: ['model', 'status'],
      registers: [registry],
    });
    const plain = new Counter({ name: 't_plain_total', help: 'h', registers: [registry] });
    return { registry, counter, plain };
  };
  return { reference: make(), bound: make() };
}

describe('bound counters', () => {
  it('expose exactly what the same increments through prom-client expose', async () => {
    const { reference: r, bound: b } = pair();
    const ok = new BoundCounter(b.counter, { model: 'm1', status: '2xx' });
    const failed = new BoundCounter(b.counter, { status: '5xx', model: 'm1' });
    const plain = new BoundCounter(b.plain, {});
    const values = [0.005, 0.01, 0.05, 0.5, 3, 0, 1];
    for (let round = 0; round < 3; round++) {
      for (const v of values) {
        r.counter.inc({ model: 'm1', status: '2xx' });
        ok.inc();
        r.counter.inc({ status: '5xx', model: 'm1' }, v);
        failed.inc(v);
        r.plain.inc(v * 2);
        plain.inc(v * 2);
      }
    }
    const text = await b.registry.metrics();
    expect(text).toBe(await r.registry.metrics());
    expect(text).toMatch(/^t_requests_total\{model="m1",status="2xx"\} 21$/m);
    expect(text).toMatch(/^t_plain_total 27.39$/m);
  });

  it('start counting again after reset() and remove(), like prom-client', async () => {
    const { reference: r, bound: b } = pair();
    const ok = new BoundCounter(b.counter, { model: 'm1', status: '2xx' });
    const failed = new BoundCounter(b.counter, { model: 'm1', status: '5xx' });
    const step = () => {
      r.counter.inc({ model: 'm1', status: '2xx' }, 2);
      ok.inc(2);
      r.counter.inc({ model: 'm1', status: '5xx' });
      failed.inc();
    };
    step();
    step();
    r.counter.remove('m1', '5xx');
    b.counter.remove('m1', '5xx');
    step();
    let text = await b.registry.metrics();
    expect(text).toBe(await r.registry.metrics());
    expect(text).toMatch(/^t_requests_total\{model="m1",status="5xx"\} 1$/m);
    r.counter.reset();
    b.counter.reset();
    step();
    text = await b.registry.metrics();
    expect(text).toBe(await r.registry.metrics());
    expect(text).toMatch(/^t_requests_total\{model="m1",status="2xx"\} 2$/m);
  });

  it('refuse what prom-client refuses', () => {
    const { bound: b } = pair();
    const ok = new BoundCounter(b.counter, { model: 'm1', status: '2xx' });
    ok.inc();
    expect(() => ok.inc(-1)).toThrow();
  });
});
