// PEM files named by the site file (TLS certificates, keys, CAs), read when the component that needs
// them starts: a missing or unreadable file stops that start with the file and its role named.
import { readFileSync } from 'node:fs';
import { GatewayError } from '../config/errors.js';

/**
 * The file's bytes; undefined when the site file names none. `what` says whose file it is and what
 * for, as the message shows it: `Cannot read ${what} file "<file>": <reason>`.
 */
export function readPem(file: string, what: string): Buffer;
export function readPem(file: string | undefined, what: string): Buffer | undefined;
export function readPem(file: string | undefined, what: string): Buffer | undefined {
  if (file === undefined) return undefined;
  try {
    return readFileSync(file);
  } catch (err) {
    throw new GatewayError('GW_ERR_COMPONENT_START', `Cannot read ${what} file "${file}": ${(err as Error).message}`, { cause: err });
  }
}
