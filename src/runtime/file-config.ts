// A Router fed from a YAML file with hot reload: the last good config keeps serving.
import type { CompiledConfig } from '../core/config/compiled.js';
import { EntraTokens } from '../config/entra.js';
import {
  formatIssue,
  loadConfigFile,
  type LoadOptions,
  loadServableConfigFile,
  type LocatedIssue,
} from '../config/load.js';
import { type ConfigWatcher, watchFile } from '../config/watch.js';
import type { Logger } from '../observe/log.js';

export interface FileConfigSource {
  initial: CompiledConfig;
  close(): void;
}

export class ConfigLoadError extends Error {
  constructor(
    readonly file: string,
    readonly issues: LocatedIssue[],
  ) {
    super(
      `invalid config ${file}:\n` +
        issues
          .filter((i) => i.severity === 'error')
          .map((i) => '  ' + formatIssue(i, file))
          .join('\n'),
    );
  }
}

export function openFileConfig(
  file: string,
  options: LoadOptions,
  log: Logger,
  apply: (config: CompiledConfig) => void,
  onRejected?: () => void,
): FileConfigSource {
  // One Entra token per identity for the life of the process: a reload does not fetch anew.
  options = { ...options, entraTokens: options.entraTokens ?? new EntraTokens(log) };
  // At start-up a config that can serve nothing still starts (not ready, saying why: see
  // startupNotice), so a missing key can be fixed by editing the file; a reload to such a
  // config is refused, because it would replace one that serves.
  const first = loadConfigFile(file, options);
  if (!first.config) throw new ConfigLoadError(file, first.issues);
  logWarnings(log, file, first.issues);
  // Files the config reads (classifier model files) reload it too, like the config file itself.
  const others = new Map<string, ConfigWatcher>();
  const watchOthers = (files: string[] = []): void => {
    for (const [path, w] of others) {
      if (files.includes(path)) continue;
      w.close();
      others.delete(path);
    }
    for (const path of files) if (!others.has(path)) others.set(path, watchFile(path, reload));
  };
  const reload = (): void => {
    const next = loadServableConfigFile(file, options);
    watchOthers([...new Set([...others.keys(), ...(next.files ?? [])])]);
    if (!next.config) {
      onRejected?.();
      log.error('config reload rejected; the last good config keeps serving', {
        file,
        issues: next.issues.filter((i) => i.severity === 'error').map((i) => formatIssue(i)),
      });
      return;
    }
    watchOthers(next.files);
    logWarnings(log, file, next.issues);
    apply(next.config);
    log.info('config reloaded', { file, revision: next.config.revision });
  };
  const watcher: ConfigWatcher = watchFile(file, reload);
  watchOthers(first.files);
  return {
    initial: first.config,
    close: () => {
      watcher.close();
      for (const w of others.values()) w.close();
    },
  };
}

function logWarnings(log: Logger, file: string, issues: LocatedIssue[]): void {
  for (const i of issues) if (i.severity === 'warning') log.warn('config', { file, issue: formatIssue(i) });
}
