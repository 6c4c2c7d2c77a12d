// The conformance suite against LocalEndpoint (in process).
import { join } from 'node:path';
import { LocalEndpoint } from '../../src/endpoint/local.js';
import { WorkPool } from '../../src/hash/pool.js';
import { tmp } from '../helpers.js';
import { conformance } from './conformance.js';

let pool: WorkPool;
let root: string;
conformance({
  name: 'LocalEndpoint',
  async setup() {
    pool = new WorkPool(2);
    root = tmp();
  },
  async teardown() {
    await pool.close();
  },
  async make(key) {
    const abs = join(root, key);
    return { ep: new LocalEndpoint(pool, 'peer'), dir: abs, abs };
  },
});
