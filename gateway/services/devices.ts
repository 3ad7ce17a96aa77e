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

/** What a reload did to the connections, by id. */
export interface ConnectionChanges {
  kept: string[];
  restarted: string[];
  added: string[];
  removed: string[];
  /** Made anew but their driver could not start (logged). */
  failed: string[];
}

export interface DeviceServices {
  /** Quick ones first; those that take seconds (node-opcua) after, each simulator before the drivers that read it. */
  services: Service[];
  /** Each opened connection's driver counters (requests, failures, overruns...). */
  stats(): Array<{ connection: string; stats: Record<string, number> }>;
  /** Whether an equipment's values come on change (an old value is not stale), from its driver's definition. */
  reportsOnChange(equipment: string): boolean;
  /**
   * Applies a reloaded site file's connections (gateway/reload.ts): a connection whose entry and
   * equipment did not change keeps its driver (its sockets, sessions and subscriptions); a changed
   * one is stopped and made anew; a removed one is stopped; an added one is started, its service
   * given to `adopt` so that the gateway's stop stops it too.
   */
  reload(next: SiteConfig, adopt: (svc: Service) => void): Promise<ConnectionChanges>;
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

  interface Slot {
    connection: string;
    type: string;
    /** Undefined once a reload removed the connection. */
    driver: Driver | undefined;
    slow: boolean;
    svc: Service;
    /** What the driver was made from: a reload restarts it only when this changed. */
    fingerprint: string;
  }
  const makeDriver = (site: SiteConfig, connection: SiteConfig['connections'][number]): Driver | undefined => {
    const equipment = site.equipment.filter((e) => e.connection === connection.id);
    if (equipment.length === 0) {
      log.warn({ connection: connection.id }, 'Connection has no equipment; not opened');
      return undefined;
    }
    const definition = findDriver(connection.type);
    if (!definition) throw new GatewayError('GW_ERR_COMPONENT_START', `No driver for connection type "${connection.type}"`);
    // Lab results reach only a driver whose definition says it captures them.
    const { results, labEvents, resultRoom, ...context } = opts.context(
      log.child({ component: 'driver', connection: connection.id, type: connection.type }),
    );
    return definition.create(
      connection,
      equipment,
      definition.capabilities.labResults && results
        ? { ...context, results, ...(labEvents ? { labEvents } : {}), ...(resultRoom ? { resultRoom } : {}) }
        : context,
    );
  };
  const slotOf = (site: SiteConfig, connection: SiteConfig['connections'][number], driver: Driver): Slot => {
    const slot: Slot = {
      connection: connection.id,
      type: connection.type,
      driver,
      slow: findDriver(connection.type)!.slowStart,
      fingerprint: connectionFingerprint(site, connection.id),
      svc: {
        id: `connection ${connection.id}`,
        name: `connection ${connection.id} (${connection.type})`,
        start: async () => {
          await slot.driver?.init();
          await slot.driver?.start();
        },
        // The driver of the moment: a reload may have replaced the one this service started.
        stop: async () => slot.driver?.stop(),
      },
    };
    return slot;
  };
  const drivers: Slot[] = [];
  for (const connection of config.connections) {
    const driver = makeDriver(config, connection);
    if (driver) drivers.push(slotOf(config, connection, driver));
  }
  let onChange = reportsOnChangeOf(config);

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
        for (const [counter, value] of Object.entries(d.driver?.stats?.() ?? {}))
          this.set({ connection: d.connection, type: d.type, counter }, value);
    },
  });

  const quick = <T extends { slow: boolean; svc: Service }>(list: T[], slow: boolean) =>
    list.filter((x) => x.slow === slow).map((x) => x.svc);
  return {
    services: [...quick(simulators, false), ...quick(drivers, false), ...quick(simulators, true), ...quick(drivers, true)],
    stats: () => drivers.map((d) => ({ connection: d.connection, stats: d.driver?.stats?.() ?? {} })),
    reportsOnChange: (equipment) => onChange(equipment),
    async reload(next, adopt) {
      const out = {
        kept: [] as string[],
        restarted: [] as string[],
        added: [] as string[],
        removed: [] as string[],
        failed: [] as string[],
      };
      const wanted = new Map(next.connections.map((c) => [c.id, c]));
      // Removed and changed ones stop first: a changed one may listen on the port its successor takes.
      for (const slot of [...drivers]) {
        const connection = wanted.get(slot.connection);
        if (connection && connectionFingerprint(next, slot.connection) === slot.fingerprint) {
          out.kept.push(slot.connection);
          continue;
        }
        await slot.driver?.stop();
        slot.driver = undefined;
        if (!connection) {
          drivers.splice(drivers.indexOf(slot), 1);
          out.removed.push(slot.connection);
        }
      }
      for (const connection of next.connections) {
        let slot = drivers.find((d) => d.connection === connection.id);
        if (slot?.driver) continue;
        const driver = makeDriver(next, connection);
        if (slot && !driver) {
          drivers.splice(drivers.indexOf(slot), 1);
          out.removed.push(connection.id);
          continue;
        }
        if (!driver) continue;
        if (slot) {
          slot.driver = driver;
          slot.fingerprint = connectionFingerprint(next, connection.id);
          out.restarted.push(connection.id);
        } else {
          slot = slotOf(next, connection, driver);
          drivers.push(slot);
          // The runner stops it with the others.
          adopt(slot.svc);
          out.added.push(connection.id);
        }
        try {
          await driver.init();
          await driver.start();
        } catch (err) {
          // As at start, a driver retries what it cannot reach; one that cannot even start is said, and the others go on.
          log.error({ connection: connection.id, err: (err as Error).message }, 'Reloaded connection cannot start');
          out.failed.push(connection.id);
        }
      }
      onChange = reportsOnChangeOf(next);
      return out;
    },
  };
}

/** The keys of an equipment entry no driver reads (what its rules judge by, its description): a change to one does not reopen its connection. */
export const RULES_ONLY_KEYS: readonly string[] = ['limits', 'template_rules', 'disabled_rules', 'description'];

/** What a connection's driver is made from: its entry and those of its equipment, without RULES_ONLY_KEYS (a changed limit does not reopen a connection). */
function connectionFingerprint(site: SiteConfig, connection: string): string {
  const equipment = site.equipment
    .filter((e) => e.connection === connection)
    .map((e) => Object.fromEntries(Object.entries(e).filter(([k]) => !RULES_ONLY_KEYS.includes(k))));
  return JSON.stringify({ connection: site.connections.find((c) => c.id === connection), equipment });
}
