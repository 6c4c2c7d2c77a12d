/**
 * Sub-tree questions over a set of paths in O(log n) or O(depth), so that reconciling two
 * large change lists never compares every change with every other.
 *
 * Sorted with comparePaths, a directory comes right before everything below it, so the
 * paths within a directory form one contiguous run that starts at its lower bound.
 */
import { comparePaths, isWithin, parentOf } from './paths.js';

export class PathIndex {
  private readonly sorted: string[];

  constructor(paths: Iterable<string>) {
    this.sorted = [...new Set(paths)].sort(comparePaths);
  }

  private lowerBound(path: string): number {
    let lo = 0;
    let hi = this.sorted.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (comparePaths(this.sorted[mid]!, path) < 0) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }

  /** The paths at or below `dir`, in order. */
  within(dir: string): string[] {
    const out: string[] = [];
    for (let i = this.lowerBound(dir); i < this.sorted.length; i++) {
      const p = this.sorted[i]!;
      if (!isWithin(p, dir)) break;
      out.push(p);
    }
    return out;
  }

  /** True when some path is `dir` or lies below it. */
  anyWithin(dir: string): boolean {
    const p = this.sorted[this.lowerBound(dir)];
    return p !== undefined && isWithin(p, dir);
  }

  /** True when some path lies strictly below `dir`. */
  anyBelow(dir: string): boolean {
    let i = this.lowerBound(dir);
    if (this.sorted[i] === dir) i++;
    const p = this.sorted[i];
    return p !== undefined && isWithin(p, dir);
  }
}

/** The strict ancestors of a path, nearest first ('' excluded). */
export function ancestorsOf(path: string): string[] {
  const out: string[] = [];
  for (let a = parentOf(path); a !== ''; a = parentOf(a)) out.push(a);
  return out;
}
