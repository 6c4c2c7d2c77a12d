/** What `async` prints: one summary line per run, then the paths that need attention. */
import { formatBytes, formatDuration, formatRate } from '../core/units.js';
import type { RunSummary } from '../engine/run.js';

const MAX_LISTED = 50;

export function summaryLine(name: string, s: RunSummary): string {
  const secs = s.elapsedMs / 1000;
  const rate = secs > 0 ? (s.bytesSent * 8) / secs : 0;
  const parts = [
    `${s.filesSent} files (${formatBytes(s.bytesSent)}) sent`,
    ...(s.linksSent > 0 ? [`${s.linksSent} links`] : []),
    `${s.dirsCreated} dirs created`,
    `${s.renamed} renamed`,
    `${s.deleted} deleted`,
    ...(s.metadataOnly > 0 ? [`${s.metadataOnly} metadata only`] : []),
    `${s.problems.length} errors`,
    ...(s.conflicts.length > 0 ? [`${s.conflicts.length} conflicts`] : []),
  ];
  return `async: ${name} ${s.direction}: ${parts.join(', ')} in ${formatDuration(s.elapsedMs)} (${formatRate(rate)})`;
}

export function detailLines(s: RunSummary): string[] {
  const out: string[] = [];
  const list = (label: string, items: { path: string; message: string }[]): void => {
    for (const it of items.slice(0, MAX_LISTED))
      out.push(`${label}: ${it.path === '' ? '.' : it.path}: ${it.message}`);
    if (items.length > MAX_LISTED) out.push(`${label}: ... and ${items.length - MAX_LISTED} more`);
  };
  list('error', s.problems);
  list('warning', s.warnings);
  list('note', s.notes);
  return out;
}

/** Bidi: one `/path   CONFLICT` line per path left in conflict (Aspera's format). */
export function conflictLines(s: RunSummary): string[] {
  return s.conflicts.map((c) => `/${c.path}   CONFLICT`);
}
