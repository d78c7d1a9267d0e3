// Plays the Envoy container in the pod harness. Started with Envoy's UID, GID and groups (and
// umask 022), it reads the bootstrap the webhook gave the Envoy container, reaches TierFlow over
// the ext_proc Unix socket exactly where that bootstrap says (as seen from the Envoy container),
// and serves the app-facing listener. Prints {"url": ...} once listening; stops on SIGTERM.
//
//   node --import ./scripts/run-from-source.ts test/pod/envoy-client.ts BOOTSTRAP_FILE SOCKET_ON_HOST
import { readFileSync } from 'node:fs';
import { parse } from 'yaml';
import { EnvoyHarness, harnessOptionsFromBootstrap } from '../extproc/envoy-harness.js';

const [bootstrapFile, socketOnHost] = process.argv.slice(2);
if (!bootstrapFile || !socketOnHost) {
  process.stderr.write('usage: envoy-client.ts BOOTSTRAP_FILE SOCKET_ON_HOST\n');
  process.exit(2);
}
const bootstrap = parse(readFileSync(bootstrapFile, 'utf8')) as Record<string, unknown>;
const harness = new EnvoyHarness(harnessOptionsFromBootstrap(bootstrap, `unix:${socketOnHost}`));
const url = await harness.listen();
process.stdout.write(`${JSON.stringify({ url, uid: process.getuid?.(), gid: process.getgid?.() })}\n`);
process.once('SIGTERM', () => {
  const report = { violations: harness.violations, grpcErrors: harness.grpcErrors };
  process.stderr.write(`${JSON.stringify(report)}\n`);
  void harness.close().then(() => process.exit(0));
});
