/**
 * Process plumbing shared by the command entry points (bin/*.js): how they treat a reader
 * that went away and termination signals.
 */

/** A reader that went away (`asyncadmin -f | head`) is not an error: exit quietly. */
export function exitQuietlyOnEpipe(): void {
  for (const stream of [process.stdout, process.stderr]) {
    stream.on('error', (e: NodeJS.ErrnoException) => {
      if (e.code === 'EPIPE') process.exit(process.exitCode ?? 0);
      throw e;
    });
  }
}

/**
 * The first SIGINT or SIGTERM aborts the returned signal, so the run can stop cleanly
 * (record what was placed, close the databases); a second one ends the process at once.
 */
export function abortOnSignals(): AbortSignal {
  const controller = new AbortController();
  let signals = 0;
  for (const sig of ['SIGINT', 'SIGTERM'] as const) {
    process.on(sig, () => {
      signals++;
      if (signals > 1) process.exit(130);
      controller.abort(new Error(`interrupted by ${sig}`));
    });
  }
  return controller.signal;
}
