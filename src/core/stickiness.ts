// Conversation stickiness: which tier and model served a conversation's last turn, so that later
// turns (which resend the whole history) are not routed down to a cheaper tier, or away from a
// model whose prompt cache is warm, just because the newest message is short.
import { hash } from 'node:crypto';
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
 * Characters of each identifying message that are hashed, at its head and at its tail (with its
 * length): enough to tell conversations apart, and the cost stays flat for long prompts.
 */
const HASHED_CHARS = 256;

/**
 * The key under which a conversation is remembered: the client's prompt_cache_key when it sends
 * one, else its system prompt and first user message. Undefined when there is neither.
 */
export function conversationKey(body: ChatCompletionRequest, scope: string): string | undefined {
  const cacheKey = (body as { prompt_cache_key?: unknown }).prompt_cache_key;
  if (typeof cacheKey === 'string' && cacheKey.length > 0) {
    return digest(`${scope}\u0000k\u0000${cacheKey}`);
  }
  const messages = Array.isArray(body.messages) ? body.messages : [];
  let text = `${scope}\u0000`;
  for (const m of messages) {
    if (!m || typeof m !== 'object') continue;
    if (m.role === 'system' || m.role === 'developer') {
      text += `s\u0000${identifyingText(m)}\u0000`;
    } else if (m.role === 'user') {
      return digest(`${text}u\u0000${identifyingText(m)}`);
    }
  }
  return undefined;
}

const digest = (text: string): string => hash('sha256', text, 'base64url').slice(0, 22);

function identifyingText(m: ChatMessage): string {
  const c = m.content;
  const text =
    typeof c === 'string'
      ? c
      : Array.isArray(c)
        ? c.map((p) => (p && p.type === 'text' && typeof p.text === 'string' ? p.text : '')).join('\n')
        : '';
  if (text.length <= 2 * HASHED_CHARS) return text;
  return `${text.length}:${text.slice(0, HASHED_CHARS)}${text.slice(-HASHED_CHARS)}`;
}

/** Time-limited LRU of conversations. Pure: the caller passes the time. */
export class StickyConversations {
  readonly #entries = new Map<string, StickyEntry>();

  constructor(private readonly capacity = MAX_CONVERSATIONS) {}

  get(key: string, now: number): StickyEntry | undefined {
    const e = this.#entries.get(key);
    if (!e) return undefined;
    this.#entries.delete(key);
    if (e.expiresAt <= now) return undefined;
    this.#entries.set(key, e);
    return e;
  }

  set(key: string, entry: StickyEntry): void {
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
