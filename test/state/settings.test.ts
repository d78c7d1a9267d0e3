import { spawnSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { sharedLimitsSettings } from '../../src/state/shared-limits.js';

describe('sharedLimitsSettings', () => {
  it('is off unless a URL is given, by flag or environment', () => {
    expect(sharedLimitsSettings(undefined, {})).toBeUndefined();
    expect(sharedLimitsSettings(undefined, { TIERFLOW_REDIS_URL: 'redis://cache:6379' })).toEqual({
      url: 'redis://cache:6379',
      intervalMs: 500,
      keyPrefix: 'tierflow:',
      shareResponses: true,
    });
    expect(
      sharedLimitsSettings('rediss://cache:6380/1', {
        TIERFLOW_REDIS_URL: 'redis://ignored',
        TIERFLOW_REDIS_PASSWORD: 'pw',
        TIERFLOW_REDIS_SYNC_MS: '250',
        TIERFLOW_REDIS_PREFIX: 'team-a:',
        TIERFLOW_REDIS_RESPONSES: 'off',
      }),
    ).toEqual({
      url: 'rediss://cache:6380/1',
      password: 'pw',
      intervalMs: 250,
      keyPrefix: 'team-a:',
      shareResponses: false,
    });
  });

  it('rejects bad values with a message that hides the password', () => {
    expect(() => sharedLimitsSettings('http://user:hunter2@cache', {})).toThrow(/redis:\/\/ or rediss:\/\//);
    expect(() => sharedLimitsSettings('http://user:hunter2@cache', {})).not.toThrow(/hunter2/);
    expect(() => sharedLimitsSettings('cache:6379 hunter2', {})).not.toThrow(/hunter2/);
    expect(() => sharedLimitsSettings('user hunter2@cache', {})).toThrow(/not a URL/);
    expect(() => sharedLimitsSettings('user hunter2@cache', {})).not.toThrow(/hunter2/);
    expect(() => sharedLimitsSettings('redis://cache', { TIERFLOW_REDIS_SYNC_MS: '0' })).toThrow(
      /TIERFLOW_REDIS_SYNC_MS/,
    );
    expect(() => sharedLimitsSettings('redis://cache', { TIERFLOW_REDIS_RESPONSES: 'maybe' })).toThrow(
      /TIERFLOW_REDIS_RESPONSES must be on or off/,
    );
  });

  it('makes serve and sidecar exit 2 on a bad --redis before starting anything', () => {
    for (const role of ['serve', 'sidecar']) {
      const r = spawnSync(process.execPath, ['bin/tierflow.js', role, '--redis', 'memcached://x'], {
        encoding: 'utf8',
        timeout: 30_000,
      });
      expect(r.status).toBe(2);
      expect(r.stderr).toMatch(/must start with redis:\/\/ or rediss:\/\//);
    }
  });
});
