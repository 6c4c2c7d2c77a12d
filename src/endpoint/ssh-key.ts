/**
 * SSH keys for logging in to the daemon: OpenSSH-format private keys (ed25519, RSA) are
 * parsed with sshpk (node:crypto reads neither the OpenSSH private key format nor
 * authorized_keys lines), then turned into node:crypto keys, which do the signing and
 * verifying. The signed message binds the server's nonce, the user and the server's
 * certificate fingerprint, so a signature cannot be replayed or relayed to another server.
 */
import { createPrivateKey, createPublicKey, sign } from 'node:crypto';
import type { KeyObject } from 'node:crypto';
import { readFileSync } from 'node:fs';
import sshpk from 'sshpk';
import { SessionError, describeIoError } from '../errors.js';

export function loginMessage(nonce: string, user: string, binding: string): Buffer {
  return Buffer.from(`open-async login v1\n${nonce}\n${user}\n${binding}\n`, 'utf8');
}

const b64u = (b: Buffer): string => b.toString('base64url');

interface SshpkPart {
  readonly data: Buffer;
}
type Parts = Record<string, SshpkPart>;

function nodeKeys(k: sshpk.Key | sshpk.PrivateKey, priv: boolean): KeyObject {
  const part = (k as unknown as { part: Parts }).part;
  if (k.type === 'ed25519') {
    const x = b64u(part.A!.data);
    return priv
      ? createPrivateKey({
          format: 'jwk',
          key: { kty: 'OKP', crv: 'Ed25519', x, d: b64u(part.k!.data.subarray(0, 32)) },
        })
      : createPublicKey({ format: 'jwk', key: { kty: 'OKP', crv: 'Ed25519', x } });
  }
  return priv ? createPrivateKey(k.toString('pkcs1')) : createPublicKey(k.toString('pkcs8'));
}

/** node:crypto's algorithm argument: ed25519 signs the message itself; RSA with SHA-256. */
function algorithmOf(type: string): string | null {
  return type === 'ed25519' ? null : 'sha256';
}

/** A public key from the base64 blob of an authorized_keys line; undefined if unusable. */
export function publicKeyFromBlob(
  blob: string,
): { key: KeyObject; algorithm: string | null } | undefined {
  try {
    const k = sshpk.parseKey(Buffer.from(blob, 'base64'), 'rfc4253');
    if (k.type !== 'ed25519' && k.type !== 'rsa') return undefined;
    return { key: nodeKeys(k, false), algorithm: algorithmOf(k.type) };
  } catch {
    return undefined;
  }
}

export interface LoginKey {
  readonly file: string;
  /** The public key blob, base64, as in authorized_keys. */
  readonly blob: string;
  sign(message: Buffer): string;
}

/** Loads an OpenSSH private key (-i); errors name the file and say what to do. */
export function loadPrivateKey(file: string): LoginKey {
  let buf: Buffer;
  try {
    buf = readFileSync(file);
  } catch (e) {
    throw new SessionError('ERR_AUTH', `Cannot read private key ${file}: ${describeIoError(e)}.`);
  }
  let k: sshpk.PrivateKey;
  try {
    k = sshpk.parsePrivateKey(buf, 'auto', { filename: file });
  } catch (e) {
    const encrypted = e instanceof Error && e.name === 'KeyEncryptedError';
    throw new SessionError(
      'ERR_AUTH',
      encrypted
        ? `Private key ${file} is protected by a passphrase, which async cannot ask for yet.`
        : `${file} is not a private key async can read (OpenSSH, PEM; ed25519 or RSA).`,
      encrypted
        ? 'Use a key without a passphrase for this job (ssh-keygen -t ed25519 -N ""), or a password or token.'
        : 'Give -i the private key file (not the .pub).',
    );
  }
  if (k.type !== 'ed25519' && k.type !== 'rsa') {
    throw new SessionError(
      'ERR_AUTH',
      `Private key ${file} is of type ${k.type}; the daemon accepts ed25519 and RSA keys.`,
    );
  }
  const key = nodeKeys(k, true);
  const alg = algorithmOf(k.type);
  const blob = k.toPublic().toBuffer('rfc4253').toString('base64');
  return { file, blob, sign: (m) => sign(alg, m, key).toString('base64') };
}
