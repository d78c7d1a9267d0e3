// A small but faithful Kubernetes API server for the TierFlow resources and Leases, over real HTTP:
// - list with a collection resourceVersion; watch from a resourceVersion (events after it, in order);
// - watch bookmarks when the client sends allowWatchBookmarks=true;
// - 410 Gone for a resourceVersion older than the compacted history: as the ERROR watch event the
//   real server sends (default), or as an HTTP 410 status;
// - server-side watch timeouts (timeoutSeconds), dropped connections, injected 5xx failures;
// - generation bumps on spec changes only, status subresource with merge patch and optimistic
//   concurrency (409 on a stale metadata.resourceVersion);
// - coordination.k8s.io/v1 Leases (get, create, replace with resourceVersion checks, MicroTime format);
// - core/v1 ConfigMaps (data, binaryData, labels; no generation), list and watch with label selectors
//   (=, ==, !=, exists, !exists): a watch sees an object that starts matching as ADDED and one that
//   stops matching as DELETED, as the real server's watch cache does.
import { randomUUID } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { KubeConfig } from '@kubernetes/client-node';

type Obj = Record<string, any>;

export interface RecordedRequest {
  method: string;
  path: string;
  query: Record<string, string>;
  contentType?: string;
  authorization?: string;
  body?: unknown;
}

interface Event {
  rv: number;
  type: 'ADDED' | 'MODIFIED' | 'DELETED';
  group: string;
  plural: string;
  namespace: string;
  object: Obj;
  /** The object before a MODIFIED event (label selectors: did it match before?). */
  previous?: Obj;
}

interface Watcher {
  group: string;
  plural: string;
  namespace?: string;
  selector?: LabelSelector;
  bookmarks: boolean;
  res: ServerResponse;
  socket: Socket;
}

const TIERFLOW = 'tierflow.dev';
const KINDS: Record<string, string> = {
  llmproviders: 'LLMProvider',
  routingpolicies: 'RoutingPolicy',
  virtualkeys: 'VirtualKey',
  leases: 'Lease',
  configmaps: 'ConfigMap',
};
/** The core API group ('' : /api/v1). */
const CORE = '';

function apiVersionOf(group: string): string {
  return group === TIERFLOW ? `${TIERFLOW}/v1alpha1` : group === CORE ? 'v1' : `${group}/v1`;
}

type LabelSelector = (labels: Record<string, string>) => boolean;

/** Equality-based label selectors (a, !a, a=b, a==b, a!=b), comma-separated; set-based ones throw. */
export function parseLabelSelector(text: string): LabelSelector {
  const terms = text
    .split(',')
    .map((t) => t.trim())
    .filter(Boolean)
    .map((t): LabelSelector => {
      if (/\s(in|notin)\s/.test(t)) throw new Error(`set-based selector not supported: ${t}`);
      const ne = /^([^!=]+)!=(.*)$/.exec(t);
      if (ne) return (l) => l[ne[1]!.trim()] !== ne[2]!.trim();
      const eq = /^([^!=]+)==?(.*)$/.exec(t);
      if (eq) return (l) => l[eq[1]!.trim()] === eq[2]!.trim();
      if (t.startsWith('!')) return (l) => !Object.hasOwn(l, t.slice(1).trim());
      return (l) => Object.hasOwn(l, t);
    });
  return (labels) => terms.every((m) => m(labels));
}

function labelsOf(o: Obj | undefined): Record<string, string> {
  return (o?.metadata?.labels as Record<string, string> | undefined) ?? {};
}
const MICROTIME = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$/;

function clone<T>(v: T): T {
  return structuredClone(v);
}

function mergePatch(target: unknown, patch: unknown): unknown {
  if (typeof patch !== 'object' || patch === null || Array.isArray(patch)) return clone(patch);
  const out: Obj =
    typeof target === 'object' && target !== null && !Array.isArray(target) ? { ...(target as Obj) } : {};
  for (const [k, v] of Object.entries(patch as Obj)) {
    if (v === null) delete out[k];
    else out[k] = mergePatch(out[k], v);
  }
  return out;
}

function status(code: number, reason: string, message: string): Obj {
  return { kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Failure', message, reason, code };
}

export class FakeApiServer {
  readonly requests: RecordedRequest[] = [];
  readonly token = 'fake-token-for-tests';
  /** `event`: 200 then an ERROR event with code 410 (what kube-apiserver does); `status`: HTTP 410. */
  goneMode: 'event' | 'status' = 'event';
  #server: Server;
  #rv = 100;
  #compactedRv = 0;
  #objects = new Map<string, Obj>();
  #history: Event[] = [];
  #watchers = new Set<Watcher>();
  #sockets = new Set<Socket>();
  #failures: { count: number; code: number; match?: (r: RecordedRequest) => boolean }[] = [];
  url = '';

  constructor() {
    this.#server = createServer((req, res) => this.#handle(req, res));
    this.#server.on('connection', (s) => {
      this.#sockets.add(s);
      s.on('close', () => this.#sockets.delete(s));
    });
  }

  async start(): Promise<this> {
    await new Promise<void>((resolve) => this.#server.listen(0, '127.0.0.1', resolve));
    this.url = `http://127.0.0.1:${(this.#server.address() as AddressInfo).port}`;
    return this;
  }

  async close(): Promise<void> {
    for (const w of this.#watchers) w.res.end();
    this.#watchers.clear();
    for (const s of this.#sockets) s.destroy();
    await new Promise<void>((resolve) => this.#server.close(() => resolve()));
  }

  kubeConfig(namespace = 'default'): KubeConfig {
    const kc = new KubeConfig();
    kc.loadFromOptions({
      clusters: [{ name: 'fake', server: this.url, skipTLSVerify: true }],
      users: [{ name: 'test', token: this.token }],
      contexts: [{ name: 'fake', cluster: 'fake', user: 'test', namespace }],
      currentContext: 'fake',
    });
    return kc;
  }

  get resourceVersion(): string {
    return String(this.#rv);
  }

  get activeWatches(): number {
    return this.#watchers.size;
  }

  // ---- test controls -------------------------------------------------------------------------

  #key(group: string, plural: string, ns: string, name: string) {
    return `${group}/${plural}/${ns}/${name}`;
  }

  get(plural: string, namespace: string, name: string, group = TIERFLOW): Obj | undefined {
    const o = this.#objects.get(this.#key(group, plural, namespace, name));
    return o && clone(o);
  }

  list(plural: string, namespace?: string, group = TIERFLOW): Obj[] {
    return [...this.#objects.entries()]
      .filter(([k]) => k.startsWith(`${group}/${plural}/${namespace === undefined ? '' : `${namespace}/`}`))
      .map(([, o]) => clone(o));
  }

  /** Creates or replaces a ConfigMap (data, binaryData base64, labels), as kubectl apply would. */
  putConfigMap(
    namespace: string,
    name: string,
    content: {
      data?: Record<string, string>;
      binaryData?: Record<string, string>;
      labels?: Record<string, string>;
    },
  ): Obj {
    const key = this.#key(CORE, 'configmaps', namespace, name);
    const before = this.#objects.get(key);
    const obj: Obj = {
      apiVersion: 'v1',
      kind: 'ConfigMap',
      metadata: {
        ...(before
          ? clone(before.metadata)
          : {
              name,
              namespace,
              uid: randomUUID(),
              creationTimestamp: new Date().toISOString().replace(/\.\d+Z$/, 'Z'),
            }),
        resourceVersion: String(++this.#rv),
      },
      ...(content.data ? { data: clone(content.data) } : {}),
      ...(content.binaryData ? { binaryData: clone(content.binaryData) } : {}),
    };
    if (content.labels) obj.metadata.labels = clone(content.labels);
    else delete obj.metadata.labels;
    this.#objects.set(key, obj);
    this.#emit(before ? 'MODIFIED' : 'ADDED', CORE, 'configmaps', namespace, obj, before);
    return clone(obj);
  }

  create(plural: string, namespace: string, name: string, spec: unknown, group = TIERFLOW): Obj {
    const key = this.#key(group, plural, namespace, name);
    if (this.#objects.has(key)) throw new Error(`exists: ${key}`);
    const obj: Obj = {
      apiVersion: apiVersionOf(group),
      kind: KINDS[plural] ?? plural,
      metadata: {
        name,
        namespace,
        uid: randomUUID(),
        generation: 1,
        resourceVersion: String(++this.#rv),
        creationTimestamp: new Date().toISOString().replace(/\.\d+Z$/, 'Z'),
      },
      spec: clone(spec),
    };
    this.#objects.set(key, obj);
    this.#emit('ADDED', group, plural, namespace, obj);
    return clone(obj);
  }

  /** Replaces the spec (generation +1 when it changed). */
  update(plural: string, namespace: string, name: string, spec: unknown, group = TIERFLOW): Obj {
    const key = this.#key(group, plural, namespace, name);
    const obj = this.#objects.get(key);
    if (!obj) throw new Error(`missing: ${key}`);
    const previous = clone(obj);
    if (JSON.stringify(obj.spec) !== JSON.stringify(spec)) obj.metadata.generation++;
    obj.spec = clone(spec);
    obj.metadata.resourceVersion = String(++this.#rv);
    this.#emit('MODIFIED', group, plural, namespace, obj, previous);
    return clone(obj);
  }

  delete(plural: string, namespace: string, name: string, group = TIERFLOW): void {
    const key = this.#key(group, plural, namespace, name);
    const obj = this.#objects.get(key);
    if (!obj) throw new Error(`missing: ${key}`);
    this.#objects.delete(key);
    obj.metadata.resourceVersion = String(++this.#rv);
    this.#emit('DELETED', group, plural, namespace, obj);
  }

  /** Forgets the event history: a watch from an older resourceVersion gets 410 Gone. */
  compact(): void {
    this.#compactedRv = this.#rv;
    this.#history = [];
  }

  /** Sends a BOOKMARK (current resourceVersion) to every watch that asked for bookmarks. */
  bookmark(): void {
    this.#rv++; // bookmarks carry a resourceVersion newer than any event the client saw
    for (const w of this.#watchers) {
      if (!w.bookmarks) continue;
      this.#write(w, {
        type: 'BOOKMARK',
        object: {
          kind: KINDS[w.plural],
          apiVersion: apiVersionOf(w.group),
          metadata: {
            resourceVersion: String(this.#rv),
            annotations: { 'k8s.io/initial-events-end': 'false' },
          },
        },
      });
    }
  }

  /** Cuts every watch connection (abruptly: `destroy`, or cleanly: `end`). */
  dropWatches(how: 'destroy' | 'end' = 'destroy'): void {
    for (const w of [...this.#watchers]) {
      this.#watchers.delete(w);
      if (how === 'destroy') w.socket.destroy();
      else w.res.end();
    }
  }

  /** The next `count` requests (matching `match`) fail with `code`. */
  failNext(count: number, code = 500, match?: (r: RecordedRequest) => boolean): void {
    this.#failures.push({ count, code, ...(match ? { match } : {}) });
  }

  /** Forgets the failures failNext() asked for. */
  clearFailures(): void {
    this.#failures.length = 0;
  }

  watchRequests(plural?: string): RecordedRequest[] {
    return this.requests.filter(
      (r) => r.query.watch === 'true' && (!plural || r.path.endsWith(`/${plural}`)),
    );
  }

  listRequests(plural?: string): RecordedRequest[] {
    return this.requests.filter(
      (r) => r.method === 'GET' && r.query.watch !== 'true' && (!plural || r.path.endsWith(`/${plural}`)),
    );
  }

  // ---- HTTP ------------------------------------------------------------------------------------

  #emit(type: Event['type'], group: string, plural: string, namespace: string, obj: Obj, previous?: Obj) {
    const event: Event = {
      rv: this.#rv,
      type,
      group,
      plural,
      namespace,
      object: clone(obj),
      ...(previous ? { previous: clone(previous) } : {}),
    };
    this.#history.push(event);
    for (const w of this.#watchers) {
      const seen = this.#seenAs(w, event);
      if (seen) this.#write(w, { type: seen, object: event.object });
    }
  }

  /** How a watcher sees an event: its type after the label selector, or undefined (not at all). */
  #seenAs(w: Watcher, e: Event): Event['type'] | undefined {
    if (w.group !== e.group || w.plural !== e.plural || (w.namespace && w.namespace !== e.namespace))
      return undefined;
    if (!w.selector) return e.type;
    const now = w.selector(labelsOf(e.object));
    if (e.type !== 'MODIFIED') return now ? e.type : undefined;
    const before = w.selector(labelsOf(e.previous));
    if (before && now) return 'MODIFIED';
    if (now) return 'ADDED';
    if (before) return 'DELETED';
    return undefined;
  }

  #write(w: Watcher, data: unknown) {
    if (!w.res.writableEnded) w.res.write(JSON.stringify(data) + '\n');
  }

  #send(res: ServerResponse, code: number, body: unknown) {
    const text = JSON.stringify(body);
    res
      .writeHead(code, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) })
      .end(text);
  }

  async #readBody(req: IncomingMessage): Promise<unknown> {
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    const text = Buffer.concat(chunks).toString('utf8');
    return text ? JSON.parse(text) : undefined;
  }

  async #handle(req: IncomingMessage, res: ServerResponse) {
    const url = new URL(req.url ?? '/', 'http://x');
    const rec: RecordedRequest = {
      method: req.method ?? 'GET',
      path: url.pathname,
      query: Object.fromEntries(url.searchParams),
      ...(req.headers['content-type'] ? { contentType: req.headers['content-type'] } : {}),
      ...(req.headers.authorization ? { authorization: req.headers.authorization } : {}),
    };
    if (req.method !== 'GET') rec.body = await this.#readBody(req).catch(() => undefined);
    this.requests.push(rec);
    if (req.headers.authorization !== `Bearer ${this.token}`)
      return this.#send(res, 401, status(401, 'Unauthorized', 'Unauthorized'));
    const failure = this.#failures.find((f) => f.count > 0 && (!f.match || f.match(rec)));
    if (failure) {
      failure.count--;
      return this.#send(res, failure.code, status(failure.code, 'InternalError', 'injected failure'));
    }
    // /apis/{group}/{version}[/namespaces/{ns}]/{plural}[/{name}[/status]], or /api/v1/... (core)
    const custom =
      /^\/apis\/([^/]+)\/([^/]+)(?:\/namespaces\/([^/]+))?\/([^/]+)(?:\/([^/]+))?(?:\/(status))?$/.exec(
        url.pathname,
      );
    const core = /^\/api\/v1(?:\/namespaces\/([^/]+))?\/(configmaps)(?:\/([^/]+))?$/.exec(url.pathname);
    const m = custom
      ? [...custom]
      : core
        ? [core[0], CORE, 'v1', core[1], core[2], core[3], undefined]
        : null;
    if (!m || !(m[4]! in KINDS))
      return this.#send(res, 404, status(404, 'NotFound', `no route ${url.pathname}`));
    const [, group, , namespace, plural, name, sub] = m as unknown as string[];
    if (group === 'coordination.k8s.io' && plural !== 'leases')
      return this.#send(res, 404, status(404, 'NotFound', 'no'));
    if (!name) {
      let selector: LabelSelector | undefined;
      try {
        selector = rec.query.labelSelector ? parseLabelSelector(rec.query.labelSelector) : undefined;
      } catch (e) {
        return this.#send(res, 400, status(400, 'BadRequest', (e as Error).message));
      }
      if (req.method === 'GET' && rec.query.watch === 'true')
        return this.#watch(req, res, group!, plural!, namespace, rec, selector);
      if (req.method === 'GET') return this.#list(res, group!, plural!, namespace, selector);
      if (req.method === 'POST')
        return this.#createFromBody(res, group!, plural!, namespace!, rec.body as Obj);
      return this.#send(res, 405, status(405, 'MethodNotAllowed', 'method not allowed'));
    }
    const key = this.#key(group!, plural!, namespace ?? '', name);
    const current = this.#objects.get(key);
    if (req.method === 'GET') {
      return current
        ? this.#send(res, 200, current)
        : this.#send(res, 404, status(404, 'NotFound', `${plural} "${name}" not found`));
    }
    if (!current) return this.#send(res, 404, status(404, 'NotFound', `${plural} "${name}" not found`));
    const body = rec.body as Obj | undefined;
    if (req.method === 'PATCH' && sub === 'status') {
      if (rec.contentType !== 'application/merge-patch+json')
        return this.#send(
          res,
          415,
          status(415, 'UnsupportedMediaType', `unsupported patch type ${rec.contentType}`),
        );
      const wantRv = body?.metadata?.resourceVersion;
      if (wantRv && wantRv !== current.metadata.resourceVersion)
        return this.#send(
          res,
          409,
          status(
            409,
            'Conflict',
            'the object has been modified; please apply your changes to the latest version and try again',
          ),
        );
      // The status subresource ignores everything but status.
      current.status = mergePatch(current.status, body?.status);
      current.metadata.resourceVersion = String(++this.#rv);
      this.#emit('MODIFIED', group!, plural!, namespace ?? '', current);
      return this.#send(res, 200, current);
    }
    if (req.method === 'PUT' && !sub) {
      if (
        !body?.metadata?.resourceVersion ||
        body.metadata.resourceVersion !== current.metadata.resourceVersion
      )
        return this.#send(res, 409, status(409, 'Conflict', 'the object has been modified'));
      const problem = this.#checkLease(plural!, body);
      if (problem) return this.#send(res, 422, status(422, 'Invalid', problem));
      const next = { ...clone(body), metadata: { ...current.metadata, resourceVersion: String(++this.#rv) } };
      if (JSON.stringify(current.spec) !== JSON.stringify(body.spec) && group === TIERFLOW)
        next.metadata.generation++;
      this.#objects.set(key, next);
      this.#emit('MODIFIED', group!, plural!, namespace ?? '', next);
      return this.#send(res, 200, next);
    }
    return this.#send(res, 405, status(405, 'MethodNotAllowed', 'method not allowed'));
  }

  #checkLease(plural: string, body: Obj): string | undefined {
    if (plural !== 'leases') return undefined;
    for (const f of ['acquireTime', 'renewTime']) {
      const v = body.spec?.[f];
      if (v !== undefined && v !== null && !MICROTIME.test(v))
        return `spec.${f}: not a MicroTime (RFC 3339 with microseconds): ${v}`;
    }
    return undefined;
  }

  #createFromBody(res: ServerResponse, group: string, plural: string, namespace: string, body: Obj) {
    const name = body?.metadata?.name;
    if (!name) return this.#send(res, 422, status(422, 'Invalid', 'metadata.name: Required value'));
    const key = this.#key(group, plural, namespace, name);
    if (this.#objects.has(key))
      return this.#send(res, 409, status(409, 'AlreadyExists', `${plural} "${name}" already exists`));
    const problem = this.#checkLease(plural, body);
    if (problem) return this.#send(res, 422, status(422, 'Invalid', problem));
    const obj = clone(body);
    obj.metadata = {
      ...obj.metadata,
      namespace,
      uid: randomUUID(),
      resourceVersion: String(++this.#rv),
      generation: 1,
    };
    this.#objects.set(key, obj);
    this.#emit('ADDED', group, plural, namespace, obj);
    return this.#send(res, 201, obj);
  }

  #list(
    res: ServerResponse,
    group: string,
    plural: string,
    namespace: string | undefined,
    selector: LabelSelector | undefined,
  ) {
    const items = [...this.#objects.entries()]
      .filter(([k]) => k.startsWith(`${group}/${plural}/${namespace === undefined ? '' : `${namespace}/`}`))
      .map(([, o]) => o)
      .filter((o) => !selector || selector(labelsOf(o)));
    this.#send(res, 200, {
      apiVersion: apiVersionOf(group),
      kind: `${KINDS[plural]}List`,
      metadata: { resourceVersion: String(this.#rv) },
      items,
    });
  }

  #watch(
    req: IncomingMessage,
    res: ServerResponse,
    group: string,
    plural: string,
    namespace: string | undefined,
    rec: RecordedRequest,
    selector: LabelSelector | undefined,
  ) {
    const from = Number(rec.query.resourceVersion || '0');
    const tooOld = from !== 0 && from < this.#compactedRv;
    if (tooOld && this.goneMode === 'status') {
      return this.#send(
        res,
        410,
        status(410, 'Expired', `too old resource version: ${from} (${this.#compactedRv})`),
      );
    }
    res.writeHead(200, { 'content-type': 'application/json', 'transfer-encoding': 'chunked' });
    res.flushHeaders();
    const w: Watcher = {
      group,
      plural,
      ...(namespace ? { namespace } : {}),
      ...(selector ? { selector } : {}),
      bookmarks: rec.query.allowWatchBookmarks === 'true',
      res,
      socket: req.socket,
    };
    if (tooOld) {
      this.#write(w, {
        type: 'ERROR',
        object: status(410, 'Expired', `too old resource version: ${from} (${this.#compactedRv})`),
      });
      res.end();
      return;
    }
    if (from === 0) {
      // resourceVersion unset: synthetic ADDED events for the current state.
      for (const o of this.list(plural, namespace, group))
        if (!selector || selector(labelsOf(o))) this.#write(w, { type: 'ADDED', object: o });
    } else {
      for (const e of this.#history) {
        const seen = e.rv > from ? this.#seenAs(w, e) : undefined;
        if (seen) this.#write(w, { type: seen, object: e.object });
      }
    }
    this.#watchers.add(w);
    const timeout = Number(rec.query.timeoutSeconds || 0);
    const timer = timeout > 0 ? setTimeout(() => res.end(), timeout * 1000) : undefined;
    const cleanup = () => {
      clearTimeout(timer);
      this.#watchers.delete(w);
    };
    res.on('close', cleanup);
    req.on('close', cleanup);
  }
}

/** Polls `check` until it returns a truthy value (or throws after `timeoutMs`). */
export async function waitFor<T>(
  check: () => T | undefined | false | null,
  timeoutMs = 5000,
  what = 'condition',
): Promise<T> {
  const start = Date.now();
  for (;;) {
    const v = check();
    if (v) return v;
    if (Date.now() - start > timeoutMs)
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}
