// The mutating admission webhook: AdmissionReview (admission.k8s.io/v1) in, JSON patch out.
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { V1Pod } from '@kubernetes/client-node';
import { injectPod, type InjectorConfig } from './inject.js';
import { errorText, silentLogger, type Logger } from './log.js';

/** Path for pods annotated tierflow.dev/inject=true (any namespace the webhook selects). */
export const PATH_ANNOTATED = '/mutate/pods';
/** Path for pods of namespaces labelled tierflow.dev/inject=enabled (opt out with the annotation). */
export const PATH_NAMESPACE = '/mutate/pods-in-enabled-namespaces';

export interface AdmissionRequest {
  uid: string;
  kind?: { group: string; version: string; kind: string };
  resource?: { group: string; version: string; resource: string };
  subResource?: string;
  operation?: string;
  namespace?: string;
  name?: string;
  dryRun?: boolean;
  object?: unknown;
}

export interface AdmissionReview {
  apiVersion: string;
  kind: string;
  request?: AdmissionRequest;
  response?: AdmissionResponse;
}

export interface AdmissionResponse {
  uid: string;
  allowed: boolean;
  patchType?: 'JSONPatch';
  patch?: string;
  warnings?: string[];
  status?: { code: number; message: string; reason?: string };
}

export interface WebhookOptions {
  injector: () => InjectorConfig;
  /** Secret names referenced by the TierFlow objects of a namespace (from the controller's informers). */
  referencedSecrets: (namespace: string) => readonly string[];
  /** Refuse the pod when injection fails (fail-closed); otherwise admit it without sidecars and warn. */
  failClosed: boolean;
  log?: Logger;
  onResult?: (result: 'injected' | 'skipped' | 'error', namespace: string) => void;
}

function respond(review: AdmissionReview, response: Omit<AdmissionResponse, 'uid'>): AdmissionReview {
  return {
    apiVersion: 'admission.k8s.io/v1',
    kind: 'AdmissionReview',
    response: { uid: review.request?.uid ?? '', ...response },
  };
}

/** Handles one AdmissionReview. Pure apart from logging; the HTTP layer is below. */
export function review(body: unknown, path: string, options: WebhookOptions): AdmissionReview {
  const log = options.log ?? silentLogger;
  const rev = body as AdmissionReview;
  const req = rev?.request;
  if (!req || typeof req.uid !== 'string') throw new BadRequest('not an AdmissionReview with a request');
  const namespace = req.namespace ?? (req.object as V1Pod | undefined)?.metadata?.namespace ?? '';
  const isPod = req.kind?.kind === 'Pod' && (req.kind.group ?? '') === '' && !req.subResource;
  if (!isPod || req.operation !== 'CREATE') {
    options.onResult?.('skipped', namespace);
    return respond(rev, { allowed: true });
  }
  try {
    const pod = req.object as V1Pod;
    const result = injectPod(pod, options.injector(), {
      namespace,
      referencedSecrets: options.referencedSecrets(namespace),
      namespaceEnabled: path === PATH_NAMESPACE,
    });
    const name = pod.metadata?.name || pod.metadata?.generateName || '';
    if (!result.injected || result.patch.length === 0) {
      options.onResult?.('skipped', namespace);
      log.debug('pod not injected', { namespace, pod: name, reason: result.skipped ?? 'already injected' });
      return respond(rev, {
        allowed: true,
        ...(result.warnings.length ? { warnings: result.warnings } : {}),
      });
    }
    options.onResult?.('injected', namespace);
    log.info('pod injected', {
      namespace,
      pod: name,
      dryRun: Boolean(req.dryRun),
      operations: result.patch.length,
    });
    return respond(rev, {
      allowed: true,
      patchType: 'JSONPatch',
      patch: Buffer.from(JSON.stringify(result.patch)).toString('base64'),
      ...(result.warnings.length ? { warnings: result.warnings } : {}),
    });
  } catch (err) {
    options.onResult?.('error', namespace);
    log.error('injection failed', { namespace, err: errorText(err) });
    if (options.failClosed) {
      return respond(rev, {
        allowed: false,
        status: {
          code: 500,
          reason: 'InternalError',
          message: `tierflow: injection failed: ${errorText(err)}`,
        },
      });
    }
    return respond(rev, { allowed: true, warnings: [`tierflow: sidecars not injected: ${errorText(err)}`] });
  }
}

export class BadRequest extends Error {}

const MAX_BODY = 8 * 1024 * 1024;

/** HTTP(S) request handler for the webhook paths; returns false for paths it does not serve. */
export function webhookHandler(options: WebhookOptions) {
  return (req: IncomingMessage, res: ServerResponse): boolean => {
    const path = (req.url ?? '').split('?')[0] ?? '';
    if (path !== PATH_ANNOTATED && path !== PATH_NAMESPACE) return false;
    if (req.method !== 'POST') {
      res.writeHead(405, { allow: 'POST' }).end();
      return true;
    }
    const chunks: Buffer[] = [];
    let size = 0;
    let aborted = false;
    req.on('data', (c: Buffer) => {
      size += c.length;
      if (size > MAX_BODY && !aborted) {
        aborted = true;
        res.writeHead(413).end();
        req.destroy();
        return;
      }
      if (!aborted) chunks.push(c);
    });
    req.on('end', () => {
      if (aborted) return;
      let out: AdmissionReview;
      try {
        out = review(JSON.parse(Buffer.concat(chunks).toString('utf8')), path, options);
      } catch (err) {
        res
          .writeHead(400, { 'content-type': 'text/plain' })
          .end(err instanceof BadRequest ? err.message : 'invalid JSON');
        return;
      }
      const text = JSON.stringify(out);
      res
        .writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) })
        .end(text);
    });
    return true;
  };
}
