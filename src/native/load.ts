/**
 * Loads one of the optional addons of src/native/ (fsscan.c for the scan, fsio.c for the
 * pool's workers), which `npm install` builds into src/native/build/Release/
 * (scripts/build-addons.mjs). Null where it is not built or does not load here (no
 * compiler, another platform, the native-free bundle) or ASYNC_NO_ADDONS is set: the caller
 * then uses Node's fs, with the same results; ASYNC_DEBUG says why in one line.
 */
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';

/** `instead`: what the caller does without it, for the debug line. */
export function loadAddon<T>(name: 'fsscan' | 'fsio', instead: string): T | null {
  try {
    if (process.env['ASYNC_NO_ADDONS']) throw new Error('ASYNC_NO_ADDONS is set');
    // From dist/src/native/ (this file, compiled). Inside the try: the native-free bundle's
    // CommonJS worker has no import.meta.url.
    const file = new URL(`../../../src/native/build/Release/${name}.node`, import.meta.url);
    return createRequire(import.meta.url)(fileURLToPath(file)) as T;
  } catch (e) {
    if (process.env['ASYNC_DEBUG']) {
      const why = (e instanceof Error ? e.message : String(e)).split('\n')[0];
      process.stderr.write(`async: debug: ${name} addon not loaded (${why}); ${instead}\n`);
    }
    return null;
  }
}
