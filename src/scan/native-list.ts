/**
 * The scan's optional addon (src/native/fsscan.c): a directory listed and every name in
 * it lstat'ed in one call, relative to the open directory, with no object per name.
 *
 * Perf: a walk of 1M files in 20k directories on one thread took 3.0-3.2 s with Node's
 * readdirSync and lstatSync, 2.0-2.1 s with the addon, and `find -printf` 2.1-2.5 s
 * (bench/RESULTS.md). `npm install` builds it (scripts/build-addons.mjs) and
 * native/load.ts loads it; where it cannot be built or loaded (no compiler, the native-free
 * bundle, ASYNC_NO_ADDONS set), the scan lists and lstats with Node's fs as before, with the
 * same results.
 */
import { loadAddon } from '../native/load.js';

/** One directory's names, sorted as Array.prototype.sort sorts them, and their lstat. */
export interface StatListing {
  readonly names: string[];
  /**
   * NUMS numbers per name, in the order of names (the FIELD_* offsets), and maybe more
   * after them. The next call reuses this array: read it before listing again.
   */
  readonly nums: Float64Array;
}

export const NUMS = 7;
export const FIELD_MODE = 0;
export const FIELD_SIZE = 1;
export const FIELD_MTIME_MS = 2;
export const FIELD_INO = 3;
export const FIELD_UID = 4;
export const FIELD_GID = 5;
/** 0, or the errno of the name's lstat (then only the mode's file type is known, or 0). */
export const FIELD_ERRNO = 6;

/** Lists a directory; undefined when Node's fs should do it (an error to report, odd names). */
export type ListDir = (dir: string) => StatListing | undefined;

interface Addon {
  list(dir: string, buffer: Float64Array): number | null | [string, Float64Array];
}

let loaded: ListDir | null | undefined;

/** The addon's lister, or undefined when it is not built or does not load here. */
export function nativeListDir(): ListDir | undefined {
  if (loaded === undefined) loaded = load();
  return loaded ?? undefined;
}

function load(): ListDir | null {
  const addon = loadAddon<Addon>('fsscan', "using Node's lstat");
  if (!addon) return null;
  // Perf: one buffer for the numbers of every directory, grown by the addon when a
  // directory needs more (a fresh ArrayBuffer per directory left up to ~100 MB of them for
  // the collector in a 1M-file scan).
  let buffer: Float64Array = new Float64Array(NUMS * 256);
  return (dir) => {
    const r = addon.list(dir, buffer);
    if (typeof r === 'number' || r === null) return undefined;
    buffer = r[1];
    return { names: r[0] === '' ? [] : r[0].split('/'), nums: buffer };
  };
}
