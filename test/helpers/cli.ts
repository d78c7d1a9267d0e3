// The built CLI as a child process, in the shape the observability tests use: the "listening"
// log entry as `ready`, and stop() that kills it outright. The process handling is cli-process.ts.
import type { ChildProcess } from 'node:child_process';
import { startCli as startCliProcess } from './cli-process.js';

export interface CliProcess {
  child: ChildProcess;
  /** The fields of the log line that said it is listening. */
  ready: Record<string, unknown>;
  output(): string;
  stop(): Promise<void>;
}

export async function startCli(
  args: string[],
  readyMessage: string,
  env: Record<string, string> = {},
): Promise<CliProcess> {
  const p = await startCliProcess(args, env, readyMessage);
  return {
    child: p.child,
    ready: p.listening,
    output: p.output,
    stop: async () => {
      await p.stop('SIGKILL');
    },
  };
}
