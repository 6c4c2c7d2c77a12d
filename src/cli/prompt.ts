/**
 * Questions on the terminal: a password without echo (-w) and a yes/no (a peer seen for
 * the first time). Both need a TTY on stdin; batch mode uses ASPERA_SCP_PASS and
 * --accept-new-host-key instead.
 */
import { createInterface } from 'node:readline';
import { Writable } from 'node:stream';

export function haveTty(): boolean {
  return process.stdin.isTTY === true;
}

function question(q: string, echo: boolean): Promise<string> {
  let muted = false;
  // The prompt is shown; what the user types is not, when echo is off.
  const out = new Writable({
    write(chunk: Buffer, _enc, cb) {
      if (!muted) process.stderr.write(chunk);
      cb();
    },
  });
  const rl = createInterface({ input: process.stdin, output: out, terminal: true });
  return new Promise((resolve) => {
    rl.question(q, (answer) => {
      rl.close();
      if (!echo) process.stderr.write('\n');
      resolve(answer);
    });
    muted = !echo;
  });
}

export function askPassword(prompt: string): Promise<string> {
  return question(prompt, false);
}

export async function askYesNo(prompt: string): Promise<boolean> {
  const a = (await question(prompt, true)).trim().toLowerCase();
  return a === 'yes' || a === 'y';
}
