// native-free worker thread: piscina's own thread entry and our task module (read, write,
// hash) in one CommonJS file, dist/worker.js. piscina starts every thread with the
// worker.js beside its main code, and then loads the task file, which is this same file
// (setup.mjs points the pool at it): require() returns the already loaded module. One file
// also means one copy of piscina in the thread, whose private symbol marks results that
// move() transfers; two copies would not recognise each other's marks.
import '../../node_modules/piscina/dist/worker.js';
export * from '../../dist/src/hash/worker.js';
