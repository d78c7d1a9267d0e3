// Small fixtures shared by the ext_proc tests.
import { mkdtempSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { ExtProcServer, type ProcessorFactory } from '../../src/extproc/server.js';

export function tempSocket(name = 'extproc.sock'): string {
  return path.join(mkdtempSync(path.join(os.tmpdir(), 'tierflow-')), name);
}

export async function startExtProc(processor: ProcessorFactory, bodyLimit?: number) {
  const socketPath = tempSocket();
  const server = new ExtProcServer({ processor, socketPath, bodyLimit });
  await server.start();
  return { server, target: `unix:${socketPath}` };
}

/** A plain upstream: answers with a handler, records what it received. */
export async function startUpstream(
  handler: (req: http.IncomingMessage, body: Buffer, res: http.ServerResponse) => void,
): Promise<{
  url: string;
  port: number;
  seen: { method: string; url: string; headers: http.IncomingHttpHeaders; body: Buffer }[];
  close: () => Promise<void>;
}> {
  const seen: { method: string; url: string; headers: http.IncomingHttpHeaders; body: Buffer }[] = [];
  const server = http.createServer(async (req, res) => {
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    const body = Buffer.concat(chunks);
    seen.push({ method: req.method ?? '', url: req.url ?? '', headers: req.headers, body });
    handler(req, body, res);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as AddressInfo).port;
  return {
    url: `http://127.0.0.1:${port}`,
    port,
    seen,
    close: async () => {
      server.closeAllConnections();
      await new Promise<void>((r) => server.close(() => r()));
    },
  };
}

export async function post(url: string, body: string | Buffer, headers: Record<string, string> = {}) {
  const res = await fetch(url, {
    method: 'POST',
    body,
    headers: { 'content-type': 'application/json', ...headers },
  });
  return { status: res.status, headers: res.headers, text: await res.text() };
}
