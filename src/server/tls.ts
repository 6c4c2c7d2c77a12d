/**
 * The daemon's TLS identity: a certificate and key from the configuration, or, on first start
 * without them, a self-signed one made with the selfsigned package (node:crypto cannot issue
 * certificates). Clients pin the certificate's fingerprint (SHA256:base64 of its DER, like
 * OpenSSH prints host keys) in their known-hosts file.
 */
import { X509Certificate } from 'node:crypto';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { generate } from 'selfsigned';
import { AsyncError, describeIoError } from '../errors.js';
import { fingerprintOfDer } from '../endpoint/known-hosts.js';

export interface TlsIdentity {
  readonly cert: string;
  readonly key: string;
  readonly fingerprint: string;
  readonly created: boolean;
}

export async function loadOrCreateIdentity(
  certFile: string,
  keyFile: string,
): Promise<TlsIdentity> {
  let created = false;
  const haveCert = existsSync(certFile);
  const haveKey = existsSync(keyFile);
  if (haveCert !== haveKey) {
    throw new AsyncError(
      'ERR_CONFIG',
      `Found ${haveCert ? certFile : keyFile} but not ${haveCert ? keyFile : certFile}.`,
      'Give both server.cert and server.key, or remove both to have a new self-signed pair made.',
    );
  }
  if (!haveCert) {
    const pems = await generate([{ name: 'commonName', value: hostname() }], {
      keyType: 'ec',
      curve: 'P-256',
      algorithm: 'sha256',
      notAfterDate: new Date(Date.now() + 10 * 365 * 86_400_000),
    });
    try {
      writeFileSync(keyFile, pems.private, { mode: 0o600, flag: 'wx' });
      writeFileSync(certFile, pems.cert, { mode: 0o644, flag: 'wx' });
    } catch (e) {
      throw new AsyncError(
        'ERR_CONFIG',
        `Cannot write the new certificate ${certFile}: ${describeIoError(e)}.`,
      );
    }
    created = true;
  }
  let cert: string;
  let key: string;
  try {
    cert = readFileSync(certFile, 'utf8');
    key = readFileSync(keyFile, 'utf8');
  } catch (e) {
    throw new AsyncError(
      'ERR_CONFIG',
      `Cannot read ${certFile} or ${keyFile}: ${describeIoError(e)}.`,
    );
  }
  let der: Buffer;
  try {
    der = new X509Certificate(cert).raw;
  } catch {
    throw new AsyncError('ERR_CONFIG', `${certFile} is not a PEM certificate.`);
  }
  return { cert, key, fingerprint: fingerprintOfDer(der), created };
}
