// Responses API conversations shared by the replicas of a deployment through Redis pub/sub, so
// that `previous_response_id` continues a conversation on whichever replica (gateway or sidecar)
// the next request reaches. Each replica publishes what its ResponseStore stores and adopts what
// the others publish; lookups stay in memory, so the request path never waits for Redis.
//
// Channel <prefix>responses; a message is the JSON of {from, id, owner, expiresAt, messages}
// (owner: the sha256 of the client's bearer token, never the token). Redis keeps nothing: a
// replica that was not subscribed when a conversation was stored (starting, or cut off from
// Redis) does not know it, and a request continuing it there gets the usual 400.
import { randomUUID } from 'node:crypto';
import type { Redis as RedisClient } from 'ioredis';
import type { ChatMessage } from '../core/openai.js';
import type { ResponseStore, SharedConversation } from '../core/responses/store.js';
import type { Logger } from '../observe/log.js';
import { redactRedisUrl, redisClientOptions, scrubRedisError } from './redis-sync.js';

/**
 * Larger conversations stay on their replica: Redis disconnects a subscriber whose pending
 * pub/sub output passes its client-output-buffer-limit (8 MB for a minute by default).
 */
export const MAX_SHARED_CONVERSATION_BYTES = 1024 * 1024;

export interface ResponseShareOptions {
  url: string;
  password?: string;
  keyPrefix?: string;
  log: Logger;
  maxConversationBytes?: number;
}

export class RedisResponseShare {
  readonly #store: ResponseStore;
  readonly #options: ResponseShareOptions;
  readonly #channel: string;
  readonly #replica = randomUUID();
  #publisher: RedisClient | undefined;
  #subscriber: RedisClient | undefined;
  #warned = false;

  constructor(store: ResponseStore, options: ResponseShareOptions) {
    this.#store = store;
    this.#options = options;
    this.#channel = `${options.keyPrefix ?? 'tierflow:'}responses`;
  }

  /** Connects (without waiting for Redis to be up) and starts sharing the store's conversations. */
  async start(): Promise<void> {
    const { Redis } = await import('ioredis');
    const { url, password } = this.#options;
    const publisher = new Redis(url, redisClientOptions(password));
    const subscriber = new Redis(url, redisClientOptions(password));
    this.#publisher = publisher;
    this.#subscriber = subscriber;
    for (const client of [publisher, subscriber]) {
      // Outages are reported by the virtual-key sync on the same Redis; one line here is enough.
      client.on('error', (err: Error) => this.#warn('redis_responses_unavailable', err));
      client.connect().catch(() => {
        /* reported through 'error'; ioredis keeps reconnecting */
      });
    }
    // ioredis subscribes again by itself after a reconnect; the first subscription waits for ready.
    subscriber.once('ready', () => {
      subscriber.subscribe(this.#channel).catch((err: Error) => this.#warn('redis_subscribe_failed', err));
    });
    subscriber.on('message', (_channel: string, text: string) => this.#receive(text));
    this.#store.onStored = (conversation) => this.#publish(conversation);
  }

  #publish(conversation: SharedConversation): void {
    const publisher = this.#publisher;
    if (!publisher || publisher.status !== 'ready') return;
    const text = JSON.stringify({ from: this.#replica, ...conversation });
    if (text.length > (this.#options.maxConversationBytes ?? MAX_SHARED_CONVERSATION_BYTES)) return;
    publisher.publish(this.#channel, text).catch((err: Error) => this.#warn('redis_publish_failed', err));
  }

  #receive(text: string): void {
    let message: unknown;
    try {
      message = JSON.parse(text);
    } catch {
      return;
    }
    const conversation = sharedConversation(message);
    if (!conversation || (message as { from?: unknown }).from === this.#replica) return;
    this.#store.adopt(conversation, Date.now());
  }

  #warn(event: string, err: Error): void {
    if (this.#warned) return;
    this.#warned = true;
    const { url, password } = this.#options;
    this.#options.log.warn(event, {
      url: redactRedisUrl(url),
      error: scrubRedisError(err.message, url, password),
    });
  }

  async close(): Promise<void> {
    this.#store.onStored = undefined;
    await Promise.all(
      [this.#publisher, this.#subscriber].map((c) =>
        c?.status === 'ready' ? c.quit().catch(() => c.disconnect()) : c?.disconnect(),
      ),
    );
  }
}

/** The conversation in a message, or undefined when it is not one. */
function sharedConversation(m: unknown): SharedConversation | undefined {
  if (typeof m !== 'object' || m === null) return undefined;
  const { id, owner, expiresAt, messages } = m as Record<string, unknown>;
  if (typeof id !== 'string' || typeof owner !== 'string' || typeof expiresAt !== 'number') return undefined;
  if (!Array.isArray(messages) || !messages.every((x) => typeof x === 'object' && x !== null && 'role' in x))
    return undefined;
  return { id, owner, expiresAt, messages: messages as ChatMessage[] };
}
