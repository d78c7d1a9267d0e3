// The built CLI as a child process (`bin/tierflow.js <command>`), waiting for its "listening" log
// line; everything it writes is kept for assertions.
import { type ChildProcess, spawn } from 'node:child_process';
import { createInterface } from 'node:readline';

export interface CliProcess {
  child: ChildProcess;
  /** The "listening" log entry. */
  listening: Record<string, unknown>;
  output(): string;
  /** Sends the signal and resolves with the exit code. */
  stop(signal?: NodeJS.Signals): Promise<number | null>;
}

export async function startCli(
  args: string[],
  env: Record<string, string | undefined> = {},
  listeningMessage = args[0] === 'sidecar' ? 'tierflow sidecar listening' : 'tierflow gateway listening',
): Promise<CliProcess> {
  const child = spawn(process.execPath, ['bin/tierflow.js', ...args], {
    env: { ...process.env, TIERFLOW_LOG_LEVEL: 'info', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stderr!.on('data', (c: Buffer) => (output += c.toString()));
  const listening = await new Promise<Record<string, unknown>>((resolve, reject) => {
    createInterface({ input: child.stdout! }).on('line', (line) => {
      output += line + '\n';
      try {
        const entry = JSON.parse(line) as Record<string, unknown>;
        if (entry.msg === listeningMessage) resolve(entry);
      } catch {
        /* not a log line */
      }
    });
    child.once('exit', (code) => reject(new Error(`${args[0]} exited with ${code}: ${output}`)));
  });
  return {
    child,
    listening,
    output: () => output,
    stop(signal = 'SIGTERM') {
      if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve(child.exitCode);
      const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
      child.kill(signal);
      return exited;
    },
  };
}
