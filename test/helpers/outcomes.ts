// Labelled outcomes for `tierflow train` tests: a traffic mix with a planted flagship gain.
import type { Outcome } from '../../src/core/classifier/fit.js';
import type { ChatCompletionRequest } from '../../src/core/openai.js';
import { seededRandom } from './prng.js';

export const user = (content: string): ChatCompletionRequest => ({
  model: 'auto',
  messages: [{ role: 'user', content }],
});

const LANGS = ['German', 'Japanese', 'Finnish', 'Korean', 'Polish', 'Turkish'];
const THINGS = ['apples', 'pens', 'boxes', 'tickets', 'books', 'cups'];

/**
 * A traffic mix where the shipped model is wrong for this user: their lightweight model fails
 * translations (which the shipped model scores low), and their math word problems are easy for
 * both models (which the shipped model scores high). Chat is easy for both. 10% label noise.
 */
export function plantedOutcomes(n: number, seed = 7): Outcome[] {
  const r = seededRandom(seed);
  const rows: Outcome[] = [];
  for (let i = 0; i < n; i++) {
    const kind = i % 3;
    const a = 2 + Math.floor(r() * 40);
    const b = 2 + Math.floor(r() * 9);
    let content: string;
    let gain: boolean;
    if (kind === 0) {
      content = `Translate into ${LANGS[i % LANGS.length]}: "Please send the ${THINGS[a % THINGS.length]} by ${b} pm."`;
      gain = true;
    } else if (kind === 1) {
      content = `Sam has ${a} ${THINGS[b % THINGS.length]} and buys ${b} more each day for ${b} days. How many ${THINGS[b % THINGS.length]} does Sam have in total?`;
      gain = false;
    } else {
      content = `hey, what do you think about ${THINGS[a % THINGS.length]}? just curious`;
      gain = false;
    }
    if (r() < 0.1) gain = !gain;
    rows.push({ id: `r${i}`, request: user(content), flagship: 1, lightweight: gain ? 0 : 1 });
  }
  return rows;
}
