// Conversation stickiness: which tier and model served a conversation's last turn, so that later
// turns (which resend the whole history) are not routed down to a cheaper tier, or away from a
// model whose prompt cache is warm, just because the newest message is short.
import type { ChatCompletionRequest, ChatMessage } from './openai.js';

export interface StickyEntry {
  /** Highest tier (index in the policy) that served the conversation. */
  tierIndex: number;
  /** provider/model that served the last turn. */
  modelId: string;
  expiresAt: number;
}

/** Conversations remembered per process; the least recently used ones are forgotten first. */
export const MAX_CONVERSATIONS = 20_000;
/**
 * Characters of each identifying message that are hashed, at its head and at its tail (and its
 * length): enough to tell conversations apart, and the cost stays flat for long prompts.
 */
const HASHED_CHARS = 256;

/**
 * The key under which a conversation is remembered: the client's prompt_cache_key when it sends
 * one, else its system prompt and first user message. Undefined when there is neither.
 */
export function conversationKey(body: ChatCompletionRequest, scope: string): string | undefined {
  h1 = SEED1;
  h2 = SEED2;
  feed(scope);
  const cacheKey = (body as { prompt_cache_key?: unknown }).prompt_cache_key;
  if (typeof cacheKey === 'string' && cacheKey.length > 0) {
    feed('\u0000k\u0000');
    feed(cacheKey);
    return digest();
  }
  const messages = Array.isArray(body.messages) ? body.messages : [];
  for (let i = 0; i < messages.length; i++) {
    const m = messages[i];
    if (!m || typeof m !== 'object') continue;
    if (m.role === 'system' || m.role === 'developer') {
      feed('\u0000s\u0000');
      feedMessage(m);
    } else if (m.role === 'user') {
      feed('\u0000u\u0000');
      feedMessage(m);
      return digest();
    }
  }
  return undefined;
}

// Two independent 32-bit multiplicative hashes (64 bits together), computed over the characters
// without building strings: this runs on every request of a sticky policy. Not a security
// boundary: keys are scoped per virtual key and policy, and a collision only shares a tier.
const SEED1 = 0x811c9dc5 | 0;
const SEED2 = 0x2545f491 | 0;
let h1 = SEED1;
let h2 = SEED2;

function feed(text: string, from = 0, to = text.length): void {
  let a = h1;
  let b = h2;
  for (let i = from; i < to; i++) {
    const c = text.charCodeAt(i);
    a = Math.imul(a ^ c, 0x01000193);
    b = Math.imul(b ^ c, 0x5bd1e995) ^ (b >>> 15);
  }
  h1 = a;
  b = Math.imul(b ^ to, 0x27d4eb2d);
  h2 = b;
}

function feedText(text: string): void {
  if (text.length <= 2 * HASHED_CHARS) {
    feed(text);
    return;
  }
  feed(text, 0, HASHED_CHARS);
  feed(text, text.length - HASHED_CHARS);
}

function feedMessage(m: ChatMessage): void {
  const c = m.content;
  if (typeof c === 'string') {
    feedText(c);
  } else if (Array.isArray(c)) {
    for (const p of c) if (p && p.type === 'text' && typeof p.text === 'string') feedText(p.text);
  }
}

function digest(): string {
  return (h1 >>> 0).toString(36) + '.' + (h2 >>> 0).toString(36);
}

/** Time-limited LRU of conversations. Pure: the caller passes the time. */
export class StickyConversations {
  readonly #entries = new Map<string, StickyEntry>();
  /** The key last set or read: the newest in #entries while it is still there. */
  #newest: string | undefined;

  constructor(private readonly capacity = MAX_CONVERSATIONS) {}

  get(key: string, now: number): StickyEntry | undefined {
    const e = this.#entries.get(key);
    if (!e) return undefined;
    this.#entries.delete(key);
    if (e.expiresAt <= now) return undefined;
    this.#entries.set(key, e);
    this.#newest = key;
    return e;
  }

  set(key: string, entry: StickyEntry): void {
    // The newest conversation again (a client's consecutive turns) stays where it is; any other
    // moves to the newest end. (A delete and set per request also makes the map rehash.)
    if (key === this.#newest && this.#entries.has(key)) {
      this.#entries.set(key, entry);
      return;
    }
    this.#newest = key;
    this.#entries.delete(key);
    this.#entries.set(key, entry);
    if (this.#entries.size > this.capacity) {
      const oldest = this.#entries.keys().next().value;
      if (oldest !== undefined) this.#entries.delete(oldest);
    }
  }

  get size(): number {
    return this.#entries.size;
  }
}
