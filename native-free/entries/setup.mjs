// Shared start-up of every native-free entry point. Imported first, so it runs before the
// CLI code: it points the hash pool at the bundled worker and the snapshot store at
// node:sqlite (the bundle carries no native addon), and refuses, in one line, a Node that
// lacks node:sqlite.
import { basename } from 'node:path';
import { EXIT } from '../../dist/src/cli/exit-codes.js';
import { setWorkerScript } from '../../dist/src/hash/pool.js';
import { snapshotDriver, useDrivers } from '../../dist/src/snapshot/select-driver.js';

setWorkerScript(new URL('./worker.js', import.meta.url).href);
useDrivers(['node:sqlite']);
try {
  snapshotDriver();
} catch (e) {
  const prog = basename(process.argv[1] ?? 'async').replace(/\.m?js$/, '');
  process.stderr.write(`${prog}: ${e instanceof Error ? e.message : String(e)}\n`);
  process.exit(EXIT.SESSION);
}
