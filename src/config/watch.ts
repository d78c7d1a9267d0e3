// Hot reload: watch the config file's directory (editors often replace the file), debounce,
// reload on content change. A bad edit keeps the last good config.
import { createHash } from 'node:crypto';
import { type FSWatcher, readFileSync, watch } from 'node:fs';
import { basename, dirname } from 'node:path';

export interface ConfigWatcher {
  close(): void;
}

export function watchFile(path: string, onChange: () => void, debounceMs = 100): ConfigWatcher {
  const name = basename(path);
  let last = digest(path);
  let timer: NodeJS.Timeout | undefined;
  const fire = () => {
    timer = undefined;
    const now = digest(path);
    if (now === undefined || now === last) return;
    last = now;
    onChange();
  };
  const watcher: FSWatcher = watch(dirname(path), { persistent: false }, (_event, file) => {
    if (file !== null && file !== name) return;
    clearTimeout(timer);
    timer = setTimeout(fire, debounceMs);
  });
  // Some editors and volume mounts swap directories (Kubernetes ConfigMaps use symlinked ..data):
  // a slow poll catches what the watcher misses.
  const poll = setInterval(fire, 2_000);
  poll.unref();
  return {
    close() {
      clearTimeout(timer);
      clearInterval(poll);
      watcher.close();
    },
  };
}

function digest(path: string): string | undefined {
  try {
    return createHash('sha256').update(readFileSync(path)).digest('hex');
  } catch {
    return undefined;
  }
}
