/**
 * Rules for the relative paths the engine passes around: '/'-separated, relative to a sync
 * root, no empty, '.' or '..' segment. A path coming from a peer is checked with
 * assertSafeRelPath before it touches a disk.
 */

/** The name of the private directory that holds databases and the transfer cache. */
export const PRIVATE_DIR = '.private-asp';

export function parentOf(path: string): string {
  const i = path.lastIndexOf('/');
  return i < 0 ? '' : path.slice(0, i);
}

export function baseName(path: string): string {
  const i = path.lastIndexOf('/');
  return i < 0 ? path : path.slice(i + 1);
}

export function joinRel(dir: string, name: string): string {
  return dir === '' ? name : `${dir}/${name}`;
}

/** True when `path` is `dir` itself or lies below it. */
export function isWithin(path: string, dir: string): boolean {
  if (dir === '') return true;
  return (
    path === dir || (path.length > dir.length && path.startsWith(dir) && path[dir.length] === '/')
  );
}

/** Replaces the leading `from` of `path` (which must be within it) with `to`. */
export function rebase(path: string, from: string, to: string): string {
  if (path === from) return to;
  return joinRel(to, path.slice(from === '' ? 0 : from.length + 1));
}

export function depthOf(path: string): number {
  if (path === '') return 0;
  let n = 1;
  for (let i = 0; i < path.length; i++) if (path.charCodeAt(i) === 47) n++;
  return n;
}

/**
 * Orders paths so that a directory comes right before its contents: compares segment by
 * segment, so 'a/b' < 'a-c' (plain string order would put 'a-c' first because '-' < '/').
 */
export function comparePaths(a: string, b: string): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    let ca = a.charCodeAt(i);
    let cb = b.charCodeAt(i);
    if (ca === cb) continue;
    if (ca === 47) ca = 0;
    if (cb === 47) cb = 0;
    return ca - cb;
  }
  return a.length - b.length;
}

/** Returns a reason string when `path` is not a safe relative path, else undefined. */
export function unsafeRelPathReason(path: string): string | undefined {
  if (path === '') return undefined;
  if (path.startsWith('/')) return 'absolute path';
  if (path.includes('\0')) return 'NUL byte in path';
  // Perf: segment bounds by indexOf, no array of segments (every op of a plan is checked).
  for (let start = 0; start <= path.length;) {
    let end = path.indexOf('/', start);
    if (end < 0) end = path.length;
    const len = end - start;
    if (len === 0 || (len <= 2 && path.startsWith(len === 1 ? '.' : '..', start)))
      return `bad path segment '${path.slice(start, end)}'`;
    start = end + 1;
  }
  if (path === PRIVATE_DIR || path.startsWith(`${PRIVATE_DIR}/`)) return 'private directory';
  return undefined;
}
