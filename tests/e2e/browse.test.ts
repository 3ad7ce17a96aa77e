// `gateway browse` against the elevator simulator over real OPC UA.
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, expect, it } from 'vitest';
import { createElevatorServer, type ElevatorServer } from '../../drivers/opcua/simulator.js';
import { gatewayAsync } from '../helpers/cli.js';
import { freePort } from '../helpers/processes.js';

let server: ElevatorServer | undefined;
afterEach(async () => {
  await server?.stop();
});

it('lists variables with NodeId, type and value, and prints them as point entries', async () => {
  server = createElevatorServer({
    port: await freePort(),
    pkiDir: mkdtempSync(join(tmpdir(), 'gw-ua-')),
    scenario: { normal: 600_000, trapped: 1000, ucmp: 1000, power_loss: 1000, repeat: true },
  });
  await server.start();
  const list = await gatewayAsync(['browse', server.endpoint(), '--node', 'ns=1;s=Lift3']);
  expect(list.code, list.stderr).toBe(0);
  expect(list.stdout).toMatch(/^ns=1;s=Lift3\.Floor\s+Int16\s+\d+\s+\/1:Floor$/m);
  expect(list.stdout).toMatch(/^ns=1;s=Lift3\.MainPower\s+Boolean\s+true\s+\/1:MainPower$/m);
  const points = await gatewayAsync(['browse', server.endpoint(), '--node', 'ns=1;s=Lift3', '--points']);
  expect(points.stdout).toContain('- { name: door_open, node: "ns=1;s=Lift3.DoorOpen" }   # Boolean');
  expect(points.stdout).toContain('- { name: run_count, node: "ns=1;s=Lift3.RunCount" }   # UInt32');
});

it('explains an untrusted certificate when browsing securely', async () => {
  server = createElevatorServer({
    port: await freePort(),
    pkiDir: mkdtempSync(join(tmpdir(), 'gw-ua-')),
    scenario: { normal: 600_000, trapped: 1000, ucmp: 1000, power_loss: 1000, repeat: true },
  });
  await server.start();
  const r = await gatewayAsync(['browse', server.endpoint(), '--security-mode', 'SignAndEncrypt', '-c', 'config/examples/minimal.yaml']);
  expect(r.code).toBe(1);
  expect(r.stderr).toContain('BadCertificateUntrusted');
  expect(r.stderr).toContain('gateway certs trust <thumbprint>');
});
