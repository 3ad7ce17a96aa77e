// The site's connections (one driver each) and simulators as services. What a driver is (slow to
// start, reporting on change) comes from its definition in the registry, never from its type's name.
import { Gauge } from 'prom-client';
import { GatewayError } from '../../config/errors.js';
import type { SiteConfig } from '../../config/schema.js';
import { DRIVER_SIMULATORS, findDriver, reportsOnChangeOf } from '../../drivers/index.js';
import type { Driver, DriverContext, SimulatorDefinition } from '../../drivers/types.js';
import type { Logger } from '../log.js';
import type { Metrics } from '../metrics.js';
import { platformInboxSimulator } from '../platform/inbox-simulator.js';
import type { Service } from './service.js';

/** Every simulator a `simulators:` entry may name: the drivers' and the gateway's own platform inbox. */
const SIMULATORS: readonly SimulatorDefinition[] = [...DRIVER_SIMULATORS, platformInboxSimulator];

export interface DeviceServices {
  /** Quick ones first; those that take seconds (node-opcua) after, each simulator before the drivers that read it. */
  services: Service[];
  /** Each opened connection's driver counters (requests, failures, overruns...). */
  stats(): Array<{ connection: string; stats: Record<string, number> }>;
  /** Whether an equipment's values come on change (an old value is not stale), from its driver's definition. */
  reportsOnChange(equipment: string): boolean;
}

/** `context` gives a connection's driver what it reads into (the log is the connection's own). */
export function deviceServices(
  config: SiteConfig,
  opts: { log: Logger; metrics: Metrics; dataDir: string; context: (log: Logger) => DriverContext },
): DeviceServices {
  const { log } = opts;
  const simulators = config.simulators.map((s, i) => {
    const definition = SIMULATORS.find((d) => d.type === s.type);
    if (!definition) throw new GatewayError('GW_ERR_COMPONENT_START', `No simulator of type "${s.type}"`);
    const sim = definition.create(s, { log, dataDir: opts.dataDir });
    const svc: Service = {
      // Its place in the site file: two simulators may share a type and a port (publishers to one broker).
      id: `simulators[${i}]`,
      // A simulator that writes files (file-instrument) has no address.
      name: typeof s.port === 'number' ? `simulator ${s.type} on ${s.host}:${s.port}` : `simulator ${s.type}`,
      start: () => sim.start(),
      stop: () => sim.stop(),
    };
    return { slow: definition.slowStart, svc };
  });

  const drivers: Array<{ connection: string; type: string; driver: Driver; slow: boolean; svc: Service }> = [];
  for (const connection of config.connections) {
    const equipment = config.equipment.filter((e) => e.connection === connection.id);
    if (equipment.length === 0) {
      log.warn({ connection: connection.id }, 'Connection has no equipment; not opened');
      continue;
    }
    const definition = findDriver(connection.type);
    if (!definition) throw new GatewayError('GW_ERR_COMPONENT_START', `No driver for connection type "${connection.type}"`);
    // Lab results reach only a driver whose definition says it captures them.
    const { results, labEvents, resultRoom, ...context } = opts.context(
      log.child({ component: 'driver', connection: connection.id, type: connection.type }),
    );
    const driver = definition.create(
      connection,
      equipment,
      definition.capabilities.labResults && results
        ? { ...context, results, ...(labEvents ? { labEvents } : {}), ...(resultRoom ? { resultRoom } : {}) }
        : context,
    );
    drivers.push({
      connection: connection.id,
      type: connection.type,
      driver,
      slow: definition.slowStart,
      svc: {
        id: `connection ${connection.id}`,
        name: `connection ${connection.id} (${connection.type})`,
        start: async () => {
          await driver.init();
          await driver.start();
        },
        stop: () => driver.stop(),
      },
    });
  }

  // Every driver's counters (requests, failures, refused answers, resets, NAKs...) in /metrics, read
  // when scraped: what a driver counts is visible without code of its own here.
  new Gauge({
    name: 'gateway_driver_counter',
    help: "A driver's counters by connection: requests, failures, refused answers (badAnswers), framing errors, resets, late answers, refused connections...",
    labelNames: ['connection', 'type', 'counter'],
    registers: [opts.metrics],
    collect() {
      this.reset();
      for (const d of drivers)
        for (const [counter, value] of Object.entries(d.driver.stats?.() ?? {}))
          this.set({ connection: d.connection, type: d.type, counter }, value);
    },
  });

  const quick = <T extends { slow: boolean; svc: Service }>(list: T[], slow: boolean) =>
    list.filter((x) => x.slow === slow).map((x) => x.svc);
  return {
    services: [...quick(simulators, false), ...quick(drivers, false), ...quick(simulators, true), ...quick(drivers, true)],
    stats: () => drivers.map((d) => ({ connection: d.connection, stats: d.driver.stats?.() ?? {} })),
    reportsOnChange: reportsOnChangeOf(config),
  };
}
