// Runs the built CLI (bin/tierflow.js) as a child process and waits for its "listening" log line.
import { type ChildProcess, spawn } from 'node:child_process';
import { createInterface } from 'node:readline';

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
  const child = spawn(process.execPath, ['bin/tierflow.js', ...args], {
    env: { ...process.env, TIERFLOW_LOG_LEVEL: 'info', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stderr!.on('data', (c: Buffer) => (output += c.toString()));
  const ready = await new Promise<Record<string, unknown>>((resolve, reject) => {
    createInterface({ input: child.stdout! }).on('line', (line) => {
      output += line + '\n';
      try {
        const entry = JSON.parse(line) as Record<string, unknown>;
        if (entry.msg === readyMessage) resolve(entry);
      } catch {
        /* not a log line */
      }
    });
    child.once('exit', (code) => reject(new Error(`tierflow ${args[0]} exited with ${code}: ${output}`)));
  });
  return {
    child,
    ready,
    output: () => output,
    stop: () =>
      new Promise<void>((resolve) => {
        if (child.exitCode !== null) return resolve();
        child.once('exit', () => resolve());
        child.kill('SIGKILL');
      }),
  };
}
