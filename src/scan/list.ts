/**
 * The current state of one path and everything below it, read straight from the disk (for
 * restores, where the receiver lost what the sender still has).
 */
import { lstatSync, readlinkSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import type { Entry } from '../core/entry.js';
import { PRIVATE_DIR, joinRel } from '../core/paths.js';
import { errnoCode } from '../errors.js';
import { entryFromStats } from './scanner.js';

export function listTree(root: string, path: string): Entry[] {
  const out: Entry[] = [];
  const visit = (rel: string): void => {
    const abs = rel === '' ? root : join(root, rel);
    let e: Entry | undefined;
    try {
      const st = lstatSync(abs);
      e = entryFromStats(rel, st, st.isSymbolicLink() ? readlinkSync(abs) : undefined);
    } catch (err) {
      if (errnoCode(err) === 'ENOENT') return;
      throw err;
    }
    if (e === undefined) return;
    if (rel !== '') out.push(e);
    if (e.kind !== 'dir') return;
    let names: string[];
    try {
      names = readdirSync(abs);
    } catch (err) {
      // An unreadable directory is restored without its contents; the sender's scan
      // reports it as a problem of its own (a crash here would stop a continuous session).
      const code = errnoCode(err);
      if (code === 'ENOENT' || code === 'EACCES' || code === 'EPERM') return;
      throw err;
    }
    for (const n of names.sort()) if (n !== PRIVATE_DIR) visit(joinRel(rel, n));
  };
  visit(path);
  return out;
}
