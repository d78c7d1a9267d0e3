// A chat.completion.chunk SSE stream (what the chat translators emit) -> Responses API SSE events.
// Pure and incremental: bytes in (cut anywhere), event text out.
//
//   first chunk            -> response.created, response.in_progress
//   content delta          -> (output_item.added message, content_part.added output_text) output_text.delta
//   refusal delta          -> (content_part.added refusal) refusal.delta
//   tool_calls delta       -> (output_item.added function_call) function_call_arguments.delta
//   [DONE] / end           -> the matching *.done events for every open item, then
//                             response.completed, or response.incomplete (length, content_filter)
//   error chunk            -> `error`, then response.failed (nothing after it)
// Every event carries `type` and a sequence_number counting from 0; item ids are msg_... / fc_...
import type { Usage } from '../openai.js';
import { SseParser } from '../providers/shared/sse.js';
import {
  functionCallItem,
  messageItem,
  newId,
  outputText,
  responseShell,
  responsesUsage,
  statusOf,
} from './response.js';

type Json = Record<string, unknown>;

const isObj = (v: unknown): v is Json => typeof v === 'object' && v !== null && !Array.isArray(v);

interface MessageState {
  kind: 'message';
  id: string;
  outputIndex: number;
  parts: { type: 'output_text' | 'refusal'; value: string }[];
  open: boolean;
}

interface CallState {
  kind: 'function_call';
  id: string;
  outputIndex: number;
  callId: string;
  name: string;
  args: string;
  open: boolean;
}

export class ChatToResponsesStream {
  readonly #parser = new SseParser((data) => this.#onData(data));
  readonly #responseId = newId('resp');
  #out = '';
  #seq = 0;
  #started = false;
  #ended = false;
  #model: string;
  readonly #items: (MessageState | CallState)[] = [];
  #message: MessageState | undefined;
  readonly #calls = new Map<number, CallState>();
  #finish: unknown = null;

  /** The final response once the stream completed (not when it failed). */
  completed: Json | undefined;

  constructor(
    private readonly request: Json,
    private readonly createdAt: number,
    /** The usage the chat translator counted (read when the stream completes). */
    private readonly usage: () => Usage | undefined,
    /** The response will be stored (store.ts): said in its `store` field. */
    private readonly stored = false,
  ) {
    this.#model = String(request.model ?? '');
  }

  /** True once a terminal event (completed, incomplete, failed) was written. */
  get ended(): boolean {
    return this.#ended;
  }

  /** Chat SSE bytes in, Responses SSE text out (possibly empty). `end`: the chat stream is over. */
  push(chunk: Buffer, end: boolean): string {
    if (chunk.length > 0) this.#parser.push(chunk);
    if (end) {
      this.#parser.end();
      if (!this.#ended) this.#complete();
    }
    const out = this.#out;
    this.#out = '';
    return out;
  }

  #emit(type: string, payload: Json): void {
    const event = { type, ...payload, sequence_number: this.#seq++ };
    this.#out += `event: ${type}\ndata: ${JSON.stringify(event)}\n\n`;
  }

  #shell(status: string): Json {
    return {
      ...responseShell(this.request, this.#responseId, this.createdAt, this.#model, this.stored),
      status,
    };
  }

  #start(): void {
    if (this.#started) return;
    this.#started = true;
    this.#emit('response.created', { response: this.#shell('in_progress') });
    this.#emit('response.in_progress', { response: this.#shell('in_progress') });
  }

  #onData(data: string): void {
    if (this.#ended) return;
    if (data === '[DONE]') {
      this.#complete();
      return;
    }
    let obj: unknown;
    try {
      obj = JSON.parse(data);
    } catch {
      return; // the chat translator already turned malformed chunks into error chunks
    }
    if (!isObj(obj)) return;
    if (typeof obj.model === 'string' && obj.model.length > 0) this.#model = obj.model;
    if (isObj(obj.error)) {
      this.#fail(obj.error);
      return;
    }
    const choice = Array.isArray(obj.choices)
      ? obj.choices.find((c) => isObj(c) && (c.index ?? 0) === 0)
      : undefined;
    if (!isObj(choice)) return;
    this.#start();
    const delta = isObj(choice.delta) ? choice.delta : {};
    if (typeof delta.content === 'string' && delta.content.length > 0)
      this.#text('output_text', delta.content);
    if (typeof delta.refusal === 'string' && delta.refusal.length > 0) this.#text('refusal', delta.refusal);
    if (Array.isArray(delta.tool_calls)) for (const tc of delta.tool_calls) if (isObj(tc)) this.#toolCall(tc);
    if (choice.finish_reason !== null && choice.finish_reason !== undefined)
      this.#finish = choice.finish_reason;
  }

  #text(type: 'output_text' | 'refusal', delta: string): void {
    let m = this.#message;
    if (!m?.open) {
      m = { kind: 'message', id: newId('msg'), outputIndex: this.#items.length, parts: [], open: true };
      this.#message = m;
      this.#items.push(m);
      this.#emit('response.output_item.added', {
        output_index: m.outputIndex,
        item: { id: m.id, type: 'message', status: 'in_progress', role: 'assistant', content: [] },
      });
    }
    let part = m.parts[m.parts.length - 1];
    if (part?.type !== type) {
      if (part) this.#partDone(m, m.parts.length - 1);
      part = { type, value: '' };
      m.parts.push(part);
      this.#emit('response.content_part.added', {
        item_id: m.id,
        output_index: m.outputIndex,
        content_index: m.parts.length - 1,
        part: type === 'output_text' ? outputText('') : { type: 'refusal', refusal: '' },
      });
    }
    part.value += delta;
    const ids = { item_id: m.id, output_index: m.outputIndex, content_index: m.parts.length - 1 };
    if (type === 'output_text') this.#emit('response.output_text.delta', { ...ids, delta, logprobs: [] });
    else this.#emit('response.refusal.delta', { ...ids, delta });
  }

  #toolCall(tc: Json): void {
    const index = typeof tc.index === 'number' ? tc.index : 0;
    const fn = isObj(tc.function) ? tc.function : {};
    let call = this.#calls.get(index);
    if (!call) {
      if (this.#message?.open) this.#messageDone(this.#message);
      call = {
        kind: 'function_call',
        id: newId('fc'),
        outputIndex: this.#items.length,
        callId: typeof tc.id === 'string' ? tc.id : newId('fc'),
        name: typeof fn.name === 'string' ? fn.name : '',
        args: '',
        open: true,
      };
      this.#calls.set(index, call);
      this.#items.push(call);
      this.#emit('response.output_item.added', {
        output_index: call.outputIndex,
        item: functionCallItem(call.id, call.callId, call.name, '', 'in_progress'),
      });
    }
    if (typeof fn.arguments === 'string' && fn.arguments.length > 0) {
      call.args += fn.arguments;
      this.#emit('response.function_call_arguments.delta', {
        item_id: call.id,
        output_index: call.outputIndex,
        delta: fn.arguments,
      });
    }
  }

  #partDone(m: MessageState, index: number): void {
    const part = m.parts[index]!;
    const ids = { item_id: m.id, output_index: m.outputIndex, content_index: index };
    if (part.type === 'output_text') {
      this.#emit('response.output_text.done', { ...ids, text: part.value, logprobs: [] });
      this.#emit('response.content_part.done', { ...ids, part: outputText(part.value) });
    } else {
      this.#emit('response.refusal.done', { ...ids, refusal: part.value });
      this.#emit('response.content_part.done', { ...ids, part: { type: 'refusal', refusal: part.value } });
    }
  }

  #messageItem(m: MessageState, status: string): Json {
    return {
      ...messageItem(m.id, '', undefined, status),
      content: m.parts.map((p) =>
        p.type === 'output_text' ? outputText(p.value) : { type: 'refusal', refusal: p.value },
      ),
    };
  }

  #messageDone(m: MessageState, status = 'completed'): void {
    m.open = false;
    if (m.parts.length > 0) this.#partDone(m, m.parts.length - 1);
    this.#emit('response.output_item.done', {
      output_index: m.outputIndex,
      item: this.#messageItem(m, status),
    });
  }

  #callDone(c: CallState): void {
    c.open = false;
    this.#emit('response.function_call_arguments.done', {
      item_id: c.id,
      output_index: c.outputIndex,
      name: c.name,
      arguments: c.args,
    });
    this.#emit('response.output_item.done', {
      output_index: c.outputIndex,
      item: functionCallItem(c.id, c.callId, c.name, c.args, 'completed'),
    });
  }

  #complete(): void {
    this.#start();
    this.#ended = true;
    const { status, incomplete } = statusOf(this.#finish);
    for (const item of this.#items) {
      if (!item.open) continue;
      if (item.kind === 'message')
        this.#messageDone(item, status === 'incomplete' ? 'incomplete' : 'completed');
      else this.#callDone(item);
    }
    const usage = this.usage();
    const response = {
      ...this.#shell(status),
      incomplete_details: incomplete,
      output: this.#items.map((i) =>
        i.kind === 'message'
          ? this.#messageItem(i, status === 'incomplete' ? 'incomplete' : 'completed')
          : functionCallItem(i.id, i.callId, i.name, i.args, 'completed'),
      ),
      usage: usage ? responsesUsage(usage) : null,
    };
    this.completed = response;
    this.#emit(status === 'incomplete' ? 'response.incomplete' : 'response.completed', { response });
  }

  /** The stream failed outside the chat chunks (the connection broke): the events that end it. */
  fail(error: Json): string {
    if (!this.#ended) this.#fail(error);
    const out = this.#out;
    this.#out = '';
    return out;
  }

  /** The chat stream carried an error: tell the client, end the response as failed. */
  #fail(error: Json): void {
    this.#start();
    this.#ended = true;
    const message = typeof error.message === 'string' ? error.message : 'The provider stream failed.';
    const code = typeof error.code === 'string' ? error.code : 'server_error';
    this.#emit('error', { code, message, param: typeof error.param === 'string' ? error.param : null });
    this.#emit('response.failed', {
      response: {
        ...this.#shell('failed'),
        error: { code: code === 'rate_limit_exceeded' ? code : 'server_error', message },
      },
    });
  }
}
