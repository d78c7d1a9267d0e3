// Where the ext_proc server listens by default: a Unix socket on the emptyDir Envoy and the
// tierflow container share. The pod layout (src/k8s) takes these from here, not the reverse.
export const SOCKET_DIR = '/var/run/tierflow/sock';
export const SOCKET_FILE = 'extproc.sock';
