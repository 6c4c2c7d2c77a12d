/**
 * The current state of one path and everything below it, read straight from the disk (for
 * restores, where the receiver lost what the sender still has). The session's filters and
 * symbolic-link mode apply as in a scan.
 */
import { lstatSync, readlinkSync, readdirSync, realpathSync, statSync } from 'node:fs';
import type { Stats } from 'node:fs';
import { join } from 'node:path';
import type { Entry } from '../core/entry.js';
import type { Filter } from '../core/filter.js';
import { PRIVATE_DIR, joinRel } from '../core/paths.js';
import { errnoCode } from '../errors.js';
import type { SymlinkMode } from './scanner.js';
import { entryFromStats } from './scanner.js';

export interface ListOptions {
  readonly filter?: Filter;
  readonly symlinks?: SymlinkMode;
}

export function listTree(root: string, path: string, opts: ListOptions = {}): Entry[] {
  const out: Entry[] = [];
  const visit = (rel: string, ancestors: readonly string[]): void => {
    const abs = rel === '' ? root : join(root, rel);
    let e: Entry | undefined;
    let real: string | undefined;
    try {
      let st: Stats = lstatSync(abs);
      if (st.isSymbolicLink() && opts.symlinks === 'skip') return;
      if (st.isSymbolicLink() && opts.symlinks === 'follow') {
        try {
          real = realpathSync(abs);
          // A loop is reported by the scan; a restore simply does not follow it.
          if (ancestors.some((a) => a === real || a.startsWith(`${real}/`))) return;
          st = statSync(real);
        } catch (err) {
          if (errnoCode(err) === 'ELOOP') return;
          if (errnoCode(err) !== 'ENOENT') throw err;
        }
      }
      if (rel !== '' && opts.filter?.excluded(rel, st.isDirectory())) return;
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
    const here = opts.symlinks === 'follow' ? [...ancestors, real ?? realpathSync(abs)] : ancestors;
    for (const n of names.sort()) if (n !== PRIVATE_DIR) visit(joinRel(rel, n), here);
  };
  visit(path, []);
  return out;
}
