// Conversations of translated Responses, kept in this process so `previous_response_id` also
// works on providers reached through their chat APIs (OpenAI stores its own responses). Pure and
// bounded: at most `maxEntries` conversations and `maxBytes` of them (JSON size), each for `ttlMs`
// after it was stored; the least recently stored go first. An entry belongs to the credential that
// created it (a hash of the client's bearer token, or none): another key cannot continue it.
// Replicas share what they store through `onStored` and `adopt` (src/state/redis-responses.ts).
import type { ChatMessage } from '../openai.js';

export interface StoredConversation {
  /** The whole conversation in chat form, the response's own answer included (no instructions). */
  messages: ChatMessage[];
  owner: string;
  expiresAt: number;
  bytes: number;
}

/** A stored conversation as replicas exchange it. */
export interface SharedConversation {
  id: string;
  owner: string;
  messages: ChatMessage[];
  /** Epoch ms. */
  expiresAt: number;
}

export interface ResponseStoreLimits {
  maxEntries: number;
  maxBytes: number;
  ttlMs: number;
}

export const DEFAULT_RESPONSE_STORE_LIMITS: ResponseStoreLimits = {
  maxEntries: 10_000,
  maxBytes: 64 * 1024 * 1024,
  ttlMs: 60 * 60 * 1000,
};

export class ResponseStore {
  readonly #entries = new Map<string, StoredConversation>();
  #bytes = 0;

  constructor(readonly limits: ResponseStoreLimits = DEFAULT_RESPONSE_STORE_LIMITS) {}

  get size(): number {
    return this.#entries.size;
  }

  get bytes(): number {
    return this.#bytes;
  }

  /** The conversation of response `id`, when it is stored, not expired and `owner`'s. */
  get(id: string, owner: string, now: number): ChatMessage[] | undefined {
    const e = this.#entries.get(id);
    if (!e) return undefined;
    if (e.expiresAt <= now) {
      this.#delete(id, e);
      return undefined;
    }
    return e.owner === owner ? e.messages : undefined;
  }

  /** Called with each conversation `set` stores (not those adopted from other replicas). */
  onStored: ((conversation: SharedConversation) => void) | undefined = undefined;

  set(id: string, owner: string, messages: ChatMessage[], now: number): void {
    const expiresAt = now + this.limits.ttlMs;
    if (this.#put(id, owner, messages, expiresAt)) this.onStored?.({ id, owner, messages, expiresAt });
  }

  /** A conversation another replica stored: kept until the expiry it was stored with. */
  adopt(conversation: SharedConversation, now: number): void {
    if (conversation.expiresAt <= now) return;
    this.#put(conversation.id, conversation.owner, conversation.messages, conversation.expiresAt);
  }

  /** Whether it was stored (false: larger than the whole store may hold). */
  #put(id: string, owner: string, messages: ChatMessage[], expiresAt: number): boolean {
    const bytes = JSON.stringify(messages).length;
    if (bytes > this.limits.maxBytes) return false;
    const old = this.#entries.get(id);
    if (old) this.#delete(id, old);
    this.#entries.set(id, { messages, owner, expiresAt, bytes });
    this.#bytes += bytes;
    for (const [k, e] of this.#entries) {
      if (this.#entries.size <= this.limits.maxEntries && this.#bytes <= this.limits.maxBytes) break;
      this.#delete(k, e);
    }
    return true;
  }

  #delete(id: string, e: StoredConversation): void {
    this.#entries.delete(id);
    this.#bytes -= e.bytes;
  }
}
