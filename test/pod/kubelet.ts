// The pod as the kubelet builds it, on this machine's filesystem: volumes laid out with the
// kubelet's ownership and modes, each container's view of its mounts, and each container's
// identity (UID, GID, supplementary groups) from the pod and container securityContext.
//
// What the kubelet does and this reproduces (pkg/volume/emptydir, secret, projected, configmap,
// util/atomic_writer, SetVolumeOwnership):
// - emptyDir: a directory of mode 0777 owned by root; with a pod fsGroup, group = fsGroup and the
//   setgid bit (new files then belong to fsGroup).
// - secret / configMap / projected: a tmpfs root of mode 1777; the files live in a timestamped
//   directory (0755, root:root) reached through `..data` and one symlink per key; each file is
//   root-owned with the item's mode, else `defaultMode` (default 0644). With fsGroup: group =
//   fsGroup, and group read (plus setgid and group search on directories) is added.
// - processes: runAsUser / runAsGroup of the container, else of the pod; supplementary groups =
//   the pod's supplementalGroups plus fsGroup.
// Each container sees only the volumes it mounts: under a per-container root, every mountPath is a
// symlink to its volume, and the harness rewrites container paths in args and env to that root.
// Not reproduced: readOnlyRootFilesystem, mount propagation, subPath, the network namespace (ports
// are remapped to free host ports instead).
import { chmodSync, chownSync, lstatSync, mkdirSync, readdirSync, symlinkSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import type { V1Container, V1Pod, V1Volume } from '@kubernetes/client-node';

export interface Identity {
  uid: number;
  gid: number;
  groups: number[];
}

export interface ApiData {
  /** Secret name -> key -> value (what exists in the API server). */
  secrets: Record<string, Record<string, string>>;
  configMaps?: Record<string, Record<string, string>>;
  /** Values of projected serviceAccountToken and downwardAPI sources. */
  token?: string;
  namespace: string;
  podName: string;
}

export class KubeletPod {
  readonly root: string;
  readonly pod: V1Pod;
  readonly #volumeDirs = new Map<string, string>();

  constructor(pod: V1Pod, root: string, data: ApiData) {
    this.pod = pod;
    this.root = root;
    mkdirSync(join(root, 'volumes'), { recursive: true, mode: 0o755 });
    chmodSync(root, 0o755);
    for (const v of pod.spec?.volumes ?? []) this.#volumeDirs.set(v.name, this.#layout(v, data));
    for (const c of this.containers()) this.#mountView(c);
  }

  containers(): V1Container[] {
    return [...(this.pod.spec?.initContainers ?? []), ...(this.pod.spec?.containers ?? [])];
  }

  container(name: string): V1Container {
    const c = this.containers().find((x) => x.name === name);
    if (!c) throw new Error(`no container ${name}`);
    return c;
  }

  volumeDir(name: string): string {
    const d = this.#volumeDirs.get(name);
    if (!d) throw new Error(`no volume ${name}`);
    return d;
  }

  /** The directory that stands for `/` in a container's view of its mounts. */
  containerRoot(name: string): string {
    return join(this.root, 'containers', name);
  }

  /** A container path on this machine: under the container's root when a mount covers it. */
  hostPath(container: string, path: string): string {
    const mounts = this.container(container).volumeMounts ?? [];
    const covered = mounts.some(
      (m) => path === m.mountPath || path.startsWith(`${m.mountPath}/`) || m.mountPath.startsWith(`${path}/`),
    );
    return covered ? join(this.containerRoot(container), path) : path;
  }

  identity(container: string): Identity {
    const c = this.container(container);
    const pod = this.pod.spec?.securityContext ?? {};
    const uid = c.securityContext?.runAsUser ?? pod.runAsUser;
    // Without runAsGroup the runtime takes the image's group for the user (0 for an unknown UID).
    const gid = c.securityContext?.runAsGroup ?? pod.runAsGroup ?? 0;
    if (uid === undefined)
      throw new Error(`container ${container} has no runAsUser (the image's user would apply)`);
    const groups = [
      ...new Set([...(pod.supplementalGroups ?? []), ...(pod.fsGroup !== undefined ? [pod.fsGroup] : [])]),
    ];
    return { uid, gid, groups };
  }

  #fsGroup(): number | undefined {
    return this.pod.spec?.securityContext?.fsGroup ?? undefined;
  }

  #layout(v: V1Volume, data: ApiData): string {
    const dir = join(this.root, 'volumes', v.name);
    mkdirSync(dir, { recursive: true });
    const fsGroup = this.#fsGroup();
    if (v.emptyDir) {
      if (fsGroup !== undefined) {
        chownSync(dir, 0, fsGroup);
        chmodSync(dir, 0o2777);
      } else chmodSync(dir, 0o777);
      return dir;
    }
    const files = new Map<string, { value: string; mode: number }>();
    const add = (path: string, value: string, mode: number) => files.set(path, { value, mode });
    if (v.secret) {
      const s = data.secrets[v.secret.secretName ?? ''];
      if (!s && !v.secret.optional)
        throw new Error(`Secret ${v.secret.secretName} missing: the pod would not start`);
      const mode = v.secret.defaultMode ?? 0o644;
      for (const [k, val] of Object.entries(s ?? {})) {
        const item = v.secret.items?.find((i) => i.key === k);
        if (v.secret.items && !item) continue;
        add(item?.path ?? k, val, item?.mode ?? mode);
      }
    } else if (v.configMap) {
      const cm = data.configMaps?.[v.configMap.name ?? ''] ?? {};
      for (const [k, val] of Object.entries(cm)) add(k, val, v.configMap.defaultMode ?? 0o644);
    } else if (v.projected) {
      const mode = v.projected.defaultMode ?? 0o644;
      for (const src of v.projected.sources ?? []) {
        if (src.serviceAccountToken) add(src.serviceAccountToken.path, data.token ?? 'token', mode);
        for (const item of src.configMap?.items ?? [])
          add(item.path, data.configMaps?.[src.configMap!.name ?? '']?.[item.key] ?? '', item.mode ?? mode);
        for (const item of src.downwardAPI?.items ?? []) {
          const f = item.fieldRef?.fieldPath;
          add(
            item.path,
            f === 'metadata.namespace' ? data.namespace : f === 'metadata.name' ? data.podName : '',
            item.mode ?? mode,
          );
        }
      }
    } else {
      throw new Error(`volume ${v.name}: kind not emulated`);
    }
    // Atomic writer layout: <dir>/..<timestamp>/<files>, <dir>/..data -> ..<timestamp>, <dir>/<key> -> ..data/<key>.
    chmodSync(dir, 0o1777);
    const ts = '..2026_01_01_00_00_00.000000001';
    mkdirSync(join(dir, ts), { mode: 0o755 });
    chmodSync(join(dir, ts), 0o755);
    for (const [path, f] of files) {
      const file = join(dir, ts, path);
      mkdirSync(dirname(file), { recursive: true, mode: 0o755 });
      writeFileSync(file, f.value);
      chmodSync(file, f.mode);
    }
    symlinkSync(ts, join(dir, '..data'));
    for (const path of files.keys()) {
      const top = path.split('/')[0]!;
      if (!existsLink(join(dir, top))) symlinkSync(join('..data', top), join(dir, top));
    }
    if (fsGroup !== undefined) setVolumeOwnership(join(dir, ts), fsGroup);
    return dir;
  }

  #mountView(c: V1Container) {
    const root = this.containerRoot(c.name);
    mkdirSync(root, { recursive: true, mode: 0o755 });
    for (const m of c.volumeMounts ?? []) {
      const at = join(root, m.mountPath);
      mkdirSync(dirname(at), { recursive: true, mode: 0o755 });
      symlinkSync(this.volumeDir(m.name), at);
    }
  }
}

function existsLink(p: string): boolean {
  try {
    lstatSync(p);
    return true;
  } catch {
    return false;
  }
}

/** The kubelet's SetVolumeOwnership for a read-only volume: group fsGroup, group read, setgid dirs. */
function setVolumeOwnership(path: string, fsGroup: number) {
  const st = lstatSync(path);
  if (st.isSymbolicLink()) return;
  chownSync(path, st.uid, fsGroup);
  if (st.isDirectory()) {
    chmodSync(path, (st.mode & 0o7777) | 0o2000 | 0o440 | 0o110);
    for (const e of readdirSync(path)) setVolumeOwnership(join(path, e), fsGroup);
  } else chmodSync(path, (st.mode & 0o7777) | 0o440);
}
