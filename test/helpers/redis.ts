// A real Redis server (Debian's redis-server) for the tests of shared state, on a free loopback
// port, without persistence. .ci/run installs the package; where it is missing the tests that
// need it are skipped with a notice, unless TIERFLOW_REQUIRE_REDIS is set (as in CI).
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { createServer } from 'node:net';

export function findRedisServer(): string | undefined {
  for (const bin of ['redis-server', '/usr/bin/redis-server', '/usr/local/bin/redis-server']) {
    try {
      execFileSync(bin, ['--version'], { stdio: 'ignore' });
      return bin;
    } catch {
      /* try the next */
    }
  }
  if (process.env.TIERFLOW_REQUIRE_REDIS) {
    throw new Error('redis-server is required (TIERFLOW_REQUIRE_REDIS is set) but not installed');
  }
  process.stderr.write(
    'redis-server not installed: skipping the shared-state tests (apt-get install redis-server)\n',
  );
  return undefined;
}

async function freePort(): Promise<number> {
  const srv = createServer();
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  const { port } = srv.address() as { port: number };
  await new Promise<void>((r) => srv.close(() => r()));
  return port;
}

export class RedisServer {
  #child: ChildProcess | undefined;
  private constructor(
    private readonly bin: string,
    readonly port: number,
    readonly password?: string,
  ) {}

  static async start(bin: string, options: { password?: string } = {}): Promise<RedisServer> {
    const server = new RedisServer(bin, await freePort(), options.password);
    await server.restart();
    return server;
  }

  get url(): string {
    return `redis://127.0.0.1:${this.port}`;
  }

  /** (Re)starts the server on the same port, empty. */
  async restart(): Promise<void> {
    await this.stop();
    const args = ['--port', String(this.port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'];
    if (this.password) args.push('--requirepass', this.password);
    const child = spawn(this.bin, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    this.#child = child;
    let out = '';
    await new Promise<void>((resolve, reject) => {
      const onData = (c: Buffer) => {
        out += c.toString();
        if (out.includes('Ready to accept connections')) {
          child.stdout!.off('data', onData);
          resolve();
        }
      };
      child.stdout!.on('data', onData);
      child.once('exit', (code) => reject(new Error(`redis-server exited with ${code}: ${out}`)));
    });
  }

  async stop(): Promise<void> {
    const child = this.#child;
    this.#child = undefined;
    if (!child || child.exitCode !== null) return;
    await new Promise<void>((resolve) => {
      child.once('exit', () => resolve());
      child.kill('SIGKILL');
    });
  }
}
