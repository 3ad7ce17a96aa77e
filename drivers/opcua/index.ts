// The OPC UA driver as the registry lists it, with its elevator simulator and its commands.
import { defineDriver, defineSimulator } from '../types.js';
import { lazyDriver } from '../common/lazy-driver.js';
import { lazySimulator } from '../common/lazy-simulator.js';
import { opcuaCommands } from './cli.js';
import { opcuaConnectionSchema, opcuaEquipmentSchema, opcuaPointSchema, opcuaSimulatorSchema } from './schema.js';

/** The OPC UA elevator simulator, whose certificate the gateway trusts (so the demo runs SignAndEncrypt). */
const elevatorSimulator = defineSimulator({
  type: 'opcua-elevator',
  schema: opcuaSimulatorSchema,
  slowStart: true,
  create: (s, { dataDir }) =>
    lazySimulator(async () => {
      const { join } = await import('node:path');
      const { createElevatorServer } = await import('./simulator.js');
      const { addTrusted } = await import('./certs.js');
      const pkiDir = join(dataDir, 'simulators', `opcua-elevator-${s.port}`);
      const server = createElevatorServer({
        host: s.host,
        port: s.port,
        id: s.id,
        security: s.security,
        seed: s.seed,
        scenario: s.scenario,
        pkiDir,
      });
      return {
        async start() {
          await server.start();
          addTrusted(join(dataDir, 'pki'), join(pkiDir, 'server', 'own', 'certs', 'certificate.pem'));
        },
        stop: () => server.stop(),
      };
    }),
});

export const opcuaDriver = defineDriver({
  type: 'opcua',
  summary:
    'OPC UA client: subscriptions (or polling), security None / Sign / SignAndEncrypt, certificate trust, reconnection with subscriptions restored.',
  connectionSchema: opcuaConnectionSchema,
  equipmentSchema: opcuaEquipmentSchema,
  pointSchema: opcuaPointSchema,
  // A subscription reports a value when it changes; polled equipment is read on its interval.
  capabilities: { reportsOnChange: (equipment) => equipment.mode === 'subscription', labResults: true, writes: false },
  // node-opcua takes seconds to load: it is imported when an OPC UA connection is initialised, after the quick parts.
  slowStart: true,
  simulators: [elevatorSimulator],
  commands: opcuaCommands,
  create: (connection, equipment, ctx) =>
    lazyDriver(async () => (await import('./driver.js')).createOpcuaDriver(connection, equipment, ctx)),
});
