/**
 * The live progress display of `async`: files and bytes done of the planned total, the
 * current rate and an ETA, redrawn in place. Only on a terminal (stderr is a TTY) and never
 * with -q or --json: a pipe, a log file or a cron mail gets the summary line only.
 *
 * cli-progress draws the bar; the totals grow as the engine plans each batch of transfers
 * (the main pass, then restores), so the bar's total is updated rather than fixed up front.
 */
import cliProgress from 'cli-progress';
import { formatBytes, formatRate } from '../core/units.js';
import type { RunEvents } from '../engine/run.js';

export interface ProgressStream extends NodeJS.WritableStream {
  readonly isTTY?: boolean;
}

export class Progress {
  private readonly bar: cliProgress.SingleBar;
  private started = false;
  private files = 0;
  private filesTotal = 0;
  private bytes = 0;
  private bytesTotal = 0;
  private readonly t0 = performance.now();

  constructor(stream: ProgressStream) {
    this.bar = new cliProgress.SingleBar(
      {
        stream,
        format:
          '{bar} {percentage}% | {files}/{filesTotal} files | {bytesDone} of {bytesAll} | {rate} | ETA {eta_formatted}',
        hideCursor: true,
        clearOnComplete: true,
        fps: 5,
        etaBuffer: 50,
      },
      cliProgress.Presets.shades_classic,
    );
  }

  /**
   * True when a display belongs on this stream: a terminal, and not -q, --json or -v (the
   * per-path lines of -v would be torn by the redrawn bar on the same terminal).
   */
  static wanted(
    stream: ProgressStream,
    o: { readonly quiet: boolean; readonly json: boolean; readonly verbose: boolean },
  ): boolean {
    return (
      stream.isTTY === true && !o.quiet && !o.json && !o.verbose && process.env.TERM !== 'dumb'
    );
  }

  events(): Required<Pick<RunEvents, 'planned' | 'bytes'>> & Pick<RunEvents, 'change'> {
    return {
      planned: (files, bytes) => {
        this.filesTotal += files;
        this.bytesTotal += bytes;
        if (!this.started) {
          this.started = true;
          this.bar.start(Math.max(1, this.bytesTotal), 0, this.payload());
        } else this.bar.setTotal(Math.max(1, this.bytesTotal));
      },
      bytes: (n) => {
        this.bytes += n;
        if (this.started) this.bar.update(Math.min(this.bytes, this.bytesTotal), this.payload());
      },
      change: (kind) => {
        if (kind !== 'send') return;
        this.files++;
        if (this.started) this.bar.update(Math.min(this.bytes, this.bytesTotal), this.payload());
      },
    };
  }

  private payload(): Record<string, string | number> {
    const secs = (performance.now() - this.t0) / 1000;
    return {
      files: this.files,
      filesTotal: this.filesTotal,
      bytesDone: formatBytes(this.bytes),
      bytesAll: formatBytes(this.bytesTotal),
      rate: formatRate(secs > 0 ? (this.bytes * 8) / secs : 0),
    };
  }

  stop(): void {
    if (this.started) this.bar.stop();
    this.started = false;
  }
}
