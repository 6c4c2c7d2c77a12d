/**
 * What some sessions add to a scanned entry: extended attributes and ACLs
 * (--preserve-xattrs, --preserve-acls) and the access time (--preserve-access-time). Built
 * from plain data, so the scan thread builds the same decorator as the endpoint.
 */
import { lstatSync } from 'node:fs';
import type { Stats } from 'node:fs';
import type { Entry } from '../core/entry.js';
import type { XattrSelection } from '../endpoint/xattrs.js';
import { readXattrs } from '../endpoint/xattrs.js';

export interface DecorateSpec {
  readonly xattrs?: XattrSelection;
  readonly atime: boolean;
}

export type Decorate = (abs: string, e: Entry, st?: Stats) => Entry;

/** The decorator of a spec; undefined when the session carries nothing extra. */
export function decorator(spec: DecorateSpec): Decorate | undefined {
  const sel = spec.xattrs;
  const atime = spec.atime;
  if (!sel && !atime) return undefined;
  return (abs, e, st) => {
    let out = e;
    if (sel && e.kind !== 'symlink') {
      const x = readXattrs(abs, sel);
      if (x !== undefined) out = { ...out, xattrs: x };
    }
    if (atime && e.kind === 'file') {
      const a = (st ?? lstatSync(abs)).atimeMs;
      out = { ...out, atimeMs: a };
    }
    return out;
  };
}
