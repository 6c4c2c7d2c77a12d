/**
 * -n follow: symbolic links are resolved and synced as what they point at. A link to one of
 * its own ancestors would make the tree infinite: it is reported (a per-path error, exit 1)
 * and not followed; the rest of the tree syncs.
 */
import { realpathSync, statSync } from 'node:fs';
import type { Stats } from 'node:fs';
import { describeIoError, errnoCode } from '../errors.js';

export type Resolved =
  | { readonly kind: 'ok'; readonly stats: Stats }
  | { readonly kind: 'dangling' }
  | { readonly kind: 'loop' | 'error'; readonly message: string };

/**
 * -n follow: resolves a link to what it points at. A link to one of its own ancestors
 * would make the tree infinite; it is reported (a per-path error) and not followed.
 */
export class FollowedLinks {
  private readonly real = new Map<string, string>();

  resolve(abs: string, absDir: string): Resolved {
    let target: string;
    try {
      target = realpathSync(abs);
    } catch (e) {
      const code = errnoCode(e);
      if (code === 'ENOENT') return { kind: 'dangling' };
      if (code === 'ELOOP')
        return { kind: 'loop', message: 'symbolic link loop: the link resolves to itself' };
      return { kind: 'error', message: `cannot follow link: ${describeIoError(e)}` };
    }
    let parent = this.real.get(absDir);
    if (parent === undefined) {
      parent = realpathSync(absDir);
      this.real.set(absDir, parent);
    }
    if (parent === target || parent.startsWith(`${target}/`) || target === '/') {
      return {
        kind: 'loop',
        message: `symbolic link loop: it points to ${target}, which contains the link; not followed`,
      };
    }
    try {
      return { kind: 'ok', stats: statSync(target) };
    } catch (e) {
      return { kind: 'error', message: `cannot follow link: ${describeIoError(e)}` };
    }
  }
}
