// The mqtt-in driver as the registry lists it, with its publisher simulator. Both load mqtt.js and
// their code when a site uses them (lazyDriver, lazySimulator).
import { defineDriver, defineSimulator } from '../types.js';
import { lazyDriver } from '../common/lazy-driver.js';
import { lazySimulator } from '../common/lazy-simulator.js';
import { mqttInConnectionSchema, mqttInEquipmentSchema, mqttInPointSchema, mqttPublisherSchema } from './schema.js';

/** Sensors and an energy meter publishing JSON to a broker, for the demo and the tests. */
const publisherSimulator = defineSimulator({
  type: 'mqtt-sensor-publisher',
  schema: mqttPublisherSchema,
  create: (s, { log }) => lazySimulator(async () => (await import('./simulator.js')).createSensorPublisher(s, log)),
});

export const mqttInDriver = defineDriver({
  type: 'mqtt-in',
  summary:
    'Devices that already publish to an MQTT broker (Zigbee2MQTT, Shelly, Tasmota, vendor gateways): a topic filter per equipment, a JSON path or a pattern per point, every message checked before it becomes a reading.',
  connectionSchema: mqttInConnectionSchema,
  equipmentSchema: mqttInEquipmentSchema,
  pointSchema: mqttInPointSchema,
  // Devices publish when they have something to say: an old value is not stale (stale_after says when it is).
  capabilities: { reportsOnChange: true, labResults: false, writes: false },
  simulators: [publisherSimulator],
  create: (connection, equipment, ctx) =>
    lazyDriver(async () => (await import('./driver.js')).createMqttInDriver(connection, equipment, ctx)),
});
