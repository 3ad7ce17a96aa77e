// The one reader of the site file's PEM files (broker, MQTT link, platform forwarder and uplink).
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect, it } from 'vitest';
import { GatewayError } from '../../../config/errors.js';
import { readPem } from '../../../gateway/pem.js';

it('reads a PEM file, and nothing when the site file names none', () => {
  const file = join(mkdtempSync(join(tmpdir(), 'gw-pem-')), 'ca.pem');
  writeFileSync(file, '-----BEGIN CERTIFICATE-----\n');
  expect(readPem(file, 'MQTT CA').toString()).toBe('-----BEGIN CERTIFICATE-----\n');
  expect(readPem(undefined, 'MQTT CA')).toBeUndefined();
});

it('stops the start with the file and its role named', () => {
  const missing = join(tmpdir(), 'gw-pem-none', 'key.pem');
  let error: unknown;
  try {
    readPem(missing, 'platform client key');
  } catch (err) {
    error = err;
  }
  expect(error).toBeInstanceOf(GatewayError);
  expect((error as GatewayError).code).toBe('GW_ERR_COMPONENT_START');
  expect((error as GatewayError).message).toMatch(new RegExp(`^Cannot read platform client key file "${missing}": ENOENT`));
});
