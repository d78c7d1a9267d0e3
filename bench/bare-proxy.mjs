// The gateway's physical-limit reference: a bare Node pass-through proxy. node:http in, one undici
// Pool out, the request body piped to the upstream and the response piped back; nothing is parsed,
// decided or counted. Whatever TierFlow spends above this is TierFlow's own work.
// Plain JavaScript for the same reason as extproc-server.mjs (no TypeScript stripper in its RSS).
//   node bench/bare-proxy.mjs <upstream origin>      prints {"port": N} when listening
import { createServer } from 'node:http';
import { Pool } from 'undici';

const origin = process.argv[2];
if (!origin) {
  process.stderr.write('usage: node bench/bare-proxy.mjs http://127.0.0.1:PORT\n');
  process.exit(2);
}
const pool = new Pool(origin, { connections: 512, keepAliveTimeout: 30_000 });

const server = createServer({ keepAliveTimeout: 60_000 }, (req, res) => {
  const headers = { 'content-type': req.headers['content-type'] ?? 'application/json' };
  if (req.headers['content-length'] !== undefined) headers['content-length'] = req.headers['content-length'];
  pool.stream(
    { path: req.url, method: req.method, headers, body: req },
    ({ statusCode, headers: h }) => {
      const out = { 'content-type': h['content-type'] ?? 'application/json' };
      if (h['content-length'] !== undefined) out['content-length'] = h['content-length'];
      res.writeHead(statusCode, out);
      return res;
    },
    (err) => {
      if (!err) return;
      if (!res.headersSent) res.writeHead(502, { 'content-type': 'application/json' });
      res.end('{"error":{"message":"upstream failed"}}');
    },
  );
});
server.listen(0, '127.0.0.1', () => {
  process.stdout.write(JSON.stringify({ port: server.address().port }) + '\n');
});
process.on('SIGTERM', () => process.exit(0));
