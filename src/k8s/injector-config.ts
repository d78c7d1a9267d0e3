// The injector's settings: a YAML file the chart renders from its values (a ConfigMap mounted into
// the controller), plus the Envoy bootstrap file next to it. Re-read when either file changes, so a
// `helm upgrade` that only changes values reaches new pods without a controller restart.
import { readFileSync, statSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { parse } from 'yaml';
import type { InjectorConfig } from './inject.js';

export interface InjectorFile extends Omit<InjectorConfig, 'envoyBootstrap'> {
  /** Path of the Envoy bootstrap YAML, relative to the injector file. */
  envoyBootstrapFile: string;
}

const REQUIRED: (keyof InjectorFile)[] = [
  'tierflowImage',
  'envoyImage',
  'envoyBootstrapFile',
  'listenerPort',
  'tierflowProbe',
  'tierflowArgs',
  'resources',
  'tierflowUid',
  'envoyUid',
];

export function parseInjectorFile(
  text: string,
  baseDir: string,
): { config: InjectorConfig; bootstrapPath: string } {
  const raw = parse(text) as Partial<InjectorFile> | null;
  if (!raw || typeof raw !== 'object') throw new Error('injector config: not a YAML mapping');
  const missing = REQUIRED.filter((k) => raw[k] === undefined || raw[k] === null);
  if (missing.length) throw new Error(`injector config: missing ${missing.join(', ')}`);
  if (!Number.isInteger(raw.listenerPort) || raw.listenerPort! < 1 || raw.listenerPort! > 65535)
    throw new Error('injector config: listenerPort must be a port number');
  if (raw.tierflowUid === 0 || raw.envoyUid === 0)
    throw new Error('injector config: sidecars must not run as root (uid 0)');
  if (raw.sharedGid === 0) throw new Error("injector config: sharedGid must not be 0 (root's group)");
  const bootstrapPath = resolve(baseDir, raw.envoyBootstrapFile!);
  const { envoyBootstrapFile: _f, ...rest } = raw as InjectorFile;
  return { config: { ...rest, envoyBootstrap: readFileSync(bootstrapPath, 'utf8') }, bootstrapPath };
}

/** A getter that returns the current injector config, re-reading the files when they change. */
export function injectorConfigLoader(path: string): () => InjectorConfig {
  let cached: { stamp: string; config: InjectorConfig } | undefined;
  let bootstrap = '';
  return () => {
    const stamp = fileStamp(path, ...(bootstrap ? [bootstrap] : []));
    if (cached && cached.stamp === stamp) return cached.config;
    const parsed = parseInjectorFile(readFileSync(path, 'utf8'), dirname(path));
    bootstrap = parsed.bootstrapPath;
    cached = { stamp: fileStamp(path, bootstrap), config: parsed.config };
    return parsed.config;
  };
}

/** Cheap change detection for mounted files: modification time and size of each ("-" if missing). */
export function fileStamp(...files: string[]): string {
  return files
    .map((f) => {
      try {
        const s = statSync(f);
        return `${s.mtimeMs}:${s.size}`;
      } catch {
        return '-';
      }
    })
    .join('|');
}
