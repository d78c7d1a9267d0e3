import { inspect } from 'node:util';
import { rememberSecret } from './redact.js';

/**
 * A credential value that never prints itself: logs, errors and JSON see "[redacted]". Creating
 * one registers the value with `redact` (src/core/redact.ts), so the value is also removed from
 * any text that leaves the process, in whatever form a provider echoes it.
 */
export class Secret {
  readonly #value: string;
  constructor(value: string) {
    this.#value = value;
    rememberSecret(value);
  }
  reveal(): string {
    return this.#value;
  }
  toString(): string {
    return '[redacted]';
  }
  toJSON(): string {
    return '[redacted]';
  }
  [inspect.custom](): string {
    return 'Secret([redacted])';
  }
}
