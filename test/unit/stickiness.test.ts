import { describe, expect, it } from 'vitest';
import { HealthRegistry } from '../../src/core/health/registry.js';
import type { ChatMessage } from '../../src/core/openai.js';
import { Router } from '../../src/core/router.js';
import { conversationKey, StickyConversations } from '../../src/core/stickiness.js';
import { compile, sampleFile } from '../helpers/config.js';
import { seededRandom } from '../helpers/prng.js';

const turn1: ChatMessage[] = [
  { role: 'system', content: 'You are a careful assistant.' },
  { role: 'user', content: 'Prove that the square root of 2 is irrational. [hard]' },
];
const turn2: ChatMessage[] = [
  ...turn1,
  { role: 'assistant', content: 'Suppose sqrt(2) = p/q in lowest terms...' },
  { role: 'user', content: 'thanks!' },
];

describe('conversationKey', () => {
  it('is the same for every turn of a conversation and differs by scope and opening', () => {
    const k1 = conversationKey({ model: 'auto', messages: turn1 }, 'key-a');
    expect(k1).toBeDefined();
    expect(conversationKey({ model: 'auto', messages: turn2 }, 'key-a')).toBe(k1);
    expect(conversationKey({ model: 'auto', messages: turn2 }, 'key-b')).not.toBe(k1);
    const other = [turn1[0]!, { role: 'user' as const, content: 'Prove Fermat for n = 3.' }];
    expect(conversationKey({ model: 'auto', messages: other }, 'key-a')).not.toBe(k1);
    expect(conversationKey({ model: 'auto', messages: [turn1[1]!] }, 'key-a')).not.toBe(k1); // system prompt counts
  });

  it("prefers the client's prompt_cache_key", () => {
    const a = conversationKey({ model: 'auto', messages: turn1, prompt_cache_key: 'chat-42' } as never, 's');
    const b = conversationKey(
      { model: 'auto', messages: [{ role: 'user', content: 'x' }], prompt_cache_key: 'chat-42' } as never,
      's',
    );
    expect(a).toBe(b);
    expect(a).not.toBe(conversationKey({ model: 'auto', messages: turn1 }, 's'));
  });

  it('handles long and multi-part messages, and requests without a user message', () => {
    const long = 'x'.repeat(100_000);
    const k = conversationKey({ model: 'auto', messages: [{ role: 'user', content: long }] }, 's');
    expect(k).toMatch(/^[0-9a-z]+\.[0-9a-z]+$/);
    expect(
      conversationKey({ model: 'auto', messages: [{ role: 'user', content: long + 'y' }] }, 's'),
    ).not.toBe(k);
    const parts = conversationKey(
      { model: 'auto', messages: [{ role: 'user', content: [{ type: 'text', text: 'hello' }] }] },
      's',
    );
    expect(parts).toBe(
      conversationKey({ model: 'auto', messages: [{ role: 'user', content: 'hello' }] }, 's'),
    );
    expect(
      conversationKey({ model: 'auto', messages: [{ role: 'system', content: 'only' }] }, 's'),
    ).toBeUndefined();
  });
});

describe('StickyConversations', () => {
  it('forgets entries after their time and the least recently used beyond capacity', () => {
    const s = new StickyConversations(2);
    s.set('a', { tierIndex: 1, modelId: 'p/a', expiresAt: 100 });
    s.set('b', { tierIndex: 0, modelId: 'p/b', expiresAt: 100 });
    expect(s.get('a', 50)?.modelId).toBe('p/a'); // a is now the most recently used
    s.set('c', { tierIndex: 0, modelId: 'p/c', expiresAt: 100 });
    expect(s.get('b', 50)).toBeUndefined();
    expect(s.get('a', 50)).toBeDefined();
    expect(s.get('a', 100)).toBeUndefined();
    expect(s.size).toBe(1);
  });

  it('keeps least-recently-used order when the same conversation is set again and again', () => {
    const s = new StickyConversations(2);
    const e = (modelId: string) => ({ tierIndex: 0, modelId, expiresAt: 100 });
    s.set('a', e('p/a'));
    s.set('b', e('p/b'));
    s.set('b', e('p/b2'));
    expect(s.get('a', 50)).toBeDefined(); // a is now the most recently used
    s.set('b', e('p/b3')); // b again, and now the most recently used
    s.set('c', e('p/c'));
    expect(s.get('a', 50)).toBeUndefined();
    expect(s.get('b', 50)?.modelId).toBe('p/b3');
    // Against a plain reference LRU, on a random mix of reads and writes.
    const lru = new StickyConversations(3);
    const ref = new Map<string, string>();
    const rng = seededRandom(7);
    for (let i = 0; i < 2000; i++) {
      const key = 'k' + Math.floor(rng() * 5);
      if (rng() < 0.5) {
        lru.set(key, e(String(i)));
        ref.delete(key);
        ref.set(key, String(i));
        if (ref.size > 3) ref.delete(ref.keys().next().value!);
      } else {
        const want = ref.get(key);
        if (want !== undefined) {
          ref.delete(key);
          ref.set(key, want);
        }
        expect(lru.get(key, 50)?.modelId).toBe(want);
      }
    }
  });
});

describe('Router with a sticky policy', () => {
  const body = (messages: ChatMessage[]) => JSON.stringify({ model: 'auto', messages });
  function router(mode?: 'tier' | 'model' | 'off', ttlSeconds = 60) {
    let now = 0;
    const file = sampleFile();
    if (mode) file.policies[0]!.stickiness = { mode, ttlSeconds };
    const r = new Router({
      config: compile(file),
      health: new HealthRegistry(),
      classify: (req) => {
        const last = req.messages[req.messages.length - 1]!.content as string;
        return { score: last.includes('[hard]') ? 0.9 : 0.1, reasons: ['test'] };
      },
      clock: () => now,
    });
    return { r, advance: (ms: number) => (now += ms) };
  }

  it('tier: a short follow-up of a hard conversation stays on the flagship tier', () => {
    const { r, advance } = router('tier');
    const first = r.plan({ body: body(turn1) });
    expect(first.tier).toBe('flagship');
    r.remember(first, first.candidates[0]!);
    const second = r.plan({ body: body(turn2) });
    expect(second.tier).toBe('flagship');
    expect(second.conversation?.applied).toBe('tier');
    // a new conversation that opens the same way is routed by its own score
    const fresh = r.plan({ body: body([turn1[0]!, { role: 'user', content: 'thanks!' }]) });
    expect(fresh.tier).toBe('lightweight');
    // and the memory ends with the TTL
    advance(61_000);
    expect(r.plan({ body: body(turn2) }).tier).toBe('lightweight');
  });

  it('tier: never lowers a tier the score asks for, and is off without the setting', () => {
    const { r } = router('tier');
    const easy = [{ role: 'user' as const, content: 'hi' }];
    const p1 = r.plan({ body: body(easy) });
    r.remember(p1, p1.candidates[0]!);
    const p2 = r.plan({
      body: body([
        ...easy,
        { role: 'assistant', content: 'hello' },
        { role: 'user', content: 'now a proof [hard]' },
      ]),
    });
    expect(p2.tier).toBe('flagship');
    expect(p2.conversation?.applied).toBeUndefined();

    for (const mode of [undefined, 'off'] as const) {
      const plain = router(mode).r;
      const a = plain.plan({ body: body(turn1) });
      plain.remember(a, a.candidates[0]!);
      expect(a.conversation).toBeUndefined();
      expect(plain.plan({ body: body(turn2) }).tier).toBe('lightweight');
    }
  });

  it('model: the next turn goes first to the model that served the last one', () => {
    const { r } = router('model');
    const first = r.plan({ body: body(turn1) });
    const fallback = first.candidates[1]!; // as if the primary had failed over
    r.remember(first, fallback);
    const second = r.plan({ body: body(turn2) });
    expect(second.candidates[0]!.id).toBe(fallback.id);
    expect(second.conversation?.applied).toBe('model');
    // a model out of rotation (breaker open, cooling down) is not forced back in
    r.health.coolDown(fallback, 60_000);
    expect(r.plan({ body: body(turn2) }).candidates[0]!.id).not.toBe(fallback.id);
  });

  it('is per virtual key: another key does not continue the conversation', () => {
    const file = sampleFile();
    file.policies[0]!.stickiness = { mode: 'tier' };
    file.virtualKeys = [
      { name: 'a', key: 'tf-a' },
      { name: 'b', key: 'tf-b' },
    ];
    const r = new Router({
      config: compile(file),
      health: new HealthRegistry(),
      classify: (req) => ({
        score: JSON.stringify(req.messages[req.messages.length - 1]).includes('[hard]') ? 0.9 : 0.1,
        reasons: [],
      }),
    });
    const first = r.plan({ body: body(turn1), headers: { authorization: 'Bearer tf-a' } });
    r.remember(first, first.candidates[0]!);
    expect(r.plan({ body: body(turn2), headers: { authorization: 'Bearer tf-a' } }).tier).toBe('flagship');
    expect(r.plan({ body: body(turn2), headers: { authorization: 'Bearer tf-b' } }).tier).toBe('lightweight');
  });
});
