/**
 * What the pool's threads load (CommonJS): piscina require()s its worker file, and on
 * Node 20 require() of an ES module (worker.ts) runs Node's synchronous ESM instantiation,
 * where an intermittent V8 abort was seen in test runs ("IsGraphAsync must be used on an
 * instantiated module", killing the whole process). Here require() loads plain CommonJS,
 * and each task reaches worker.ts through one import(), Node's ordinary ESM loading.
 */
import type * as worker from './worker.js';

type Tasks = typeof worker;

let tasks: Promise<Tasks> | undefined;
const load = (): Promise<Tasks> => (tasks ??= import('./worker.js'));

export const read = async (t: Parameters<Tasks['read']>[0]) => (await load()).read(t);
export const write = async (t: Parameters<Tasks['write']>[0]) => (await load()).write(t);
export const hash = async (t: Parameters<Tasks['hash']>[0]) => (await load()).hash(t);
export const pieces = async (t: Parameters<Tasks['pieces']>[0]) => (await load()).pieces(t);
