import { describe, expect, it } from 'vitest';
import { AnswerTooLargeError, WholeAnswerHandler } from '../../src/pipeline/whole-answer.js';

/** A stand-in for undici's DispatchController that records aborts. */
function controller() {
  const c = { aborted: undefined as Error | undefined, abort: (e: Error) => void (c.aborted = e) };
  return c as unknown as import('undici').Dispatcher.DispatchController & { aborted?: Error };
}

describe('WholeAnswerHandler', () => {
  it('collects a 2xx body whole, whatever its size', async () => {
    const h = new WholeAnswerHandler(() => true, 4);
    const c = controller();
    h.onRequestStart(c);
    h.onResponseStart(c, 100, {}); // informational: ignored
    h.onResponseStart(c, 200, { 'content-type': 'application/json' });
    h.onResponseData(c, Buffer.from('{"a":'));
    h.onResponseData(c, Buffer.from('1}'));
    h.onResponseEnd();
    const a = await h.answer;
    expect(a.statusCode).toBe(200);
    expect(a.headers['content-type']).toBe('application/json');
    expect(a.body.toString()).toBe('{"a":1}');
    expect(c.aborted).toBeUndefined();
  });

  it('refuses a 2xx body beyond the answer limit: nothing kept, the exchange aborted', async () => {
    const h = new WholeAnswerHandler(() => true, 4, 8);
    const c = controller();
    h.onRequestStart(c);
    h.onResponseStart(c, 200, {});
    h.onResponseData(c, Buffer.from('12345'));
    h.onResponseData(c, Buffer.from('6789'));
    await expect(h.answer).rejects.toBeInstanceOf(AnswerTooLargeError);
    expect(c.aborted).toBeInstanceOf(AnswerTooLargeError);
    h.onResponseData(c, Buffer.from('more'));
    h.onResponseError(c, new Error('aborted'));
  });

  it('keeps an error body up to the limit and stops reading beyond it', async () => {
    const h = new WholeAnswerHandler(() => false, 4);
    const c = controller();
    h.onRequestStart(c);
    h.onResponseStart(c, 500, {});
    h.onResponseData(c, Buffer.from('abc'));
    h.onResponseData(c, Buffer.from('def'));
    expect(c.aborted).toBeInstanceOf(Error);
    h.onResponseError(c, new Error('aborted'));
    expect((await h.answer).body.toString()).toBe('abc');
  });

  it('answers an error whose body failed to arrive with an empty body; a 2xx failing rejects', async () => {
    const err = new Error('socket hang up');
    const failedError = new WholeAnswerHandler(() => false, 100);
    failedError.onResponseStart(controller(), 502, {});
    failedError.onResponseData(controller(), Buffer.from('partial'));
    failedError.onResponseError(controller(), err);
    expect((await failedError.answer).body.length).toBe(0);

    const failedAnswer = new WholeAnswerHandler(() => true, 100);
    failedAnswer.onResponseStart(controller(), 200, {});
    failedAnswer.onResponseError(controller(), err);
    await expect(failedAnswer.answer).rejects.toBe(err);
  });

  it('an abort before the request is on a connection ends it as soon as it is', async () => {
    const h = new WholeAnswerHandler(() => true, 100);
    const reason = new Error('deadline');
    h.abort(reason);
    const c = controller();
    h.onRequestStart(c);
    expect(c.aborted).toBe(reason);
    h.onResponseError(c, reason);
    await expect(h.answer).rejects.toBe(reason);
  });
});
