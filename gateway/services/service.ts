// The one lifecycle every part of a running gateway follows, and the runner that composes them.
import { GatewayError } from '../../config/errors.js';
import type { Logger } from '../log.js';

/** What a service reports for /ready: whether it does its job now, and what an operator needs to see why not. */
export interface Health {
  ok: boolean;
  detail?: unknown;
}

/**
 * A part of the gateway (the store, the broker, the MQTT link, a driver's connection, the HTTP API...).
 * init() prepares what is local (folders, files, the store, building its parts) and reaches nothing
 * outside the process; start() listens, connects and polls; stop() releases everything and flushes
 * what it holds, also when start() never ran. health(), when a service has one, is its part of /ready
 * under its id.
 */
export interface Service {
  /** Its key in /ready and in logs: `store`, `mqtt`, `connection boiler-plc`... */
  readonly id: string;
  /** How an operator would name it: "embedded MQTT broker". */
  readonly name: string;
  init?(): Promise<void>;
  start(): Promise<void>;
  stop(): Promise<void>;
  health?(): Health;
}

/** A service that only starts and stops. */
export function service(
  id: string,
  name: string,
  parts: Pick<Service, 'start' | 'stop'> & Partial<Pick<Service, 'init' | 'health'>>,
): Service {
  return { id, name, ...parts };
}

const STOP_TIMEOUT_MS = 1500;

/**
 * Runs services in their order: every init() first (in order), then every start() (in order); stops
 * them in reverse, each within STOP_TIMEOUT_MS, whatever another one does. A service that fails to
 * init or start stops those before it and fails the whole with GW_ERR_COMPONENT_START. A stop asked
 * for while starting lets the service being started finish, then stops what was started.
 */
export class ServiceRunner {
  private readonly prepared: Service[] = [];
  private starting: Promise<void> | undefined;
  private stopping = false;

  /** Whether stop() was asked for (a start then ends early, without an error). */
  get stopped(): boolean {
    return this.stopping;
  }

  constructor(
    readonly services: readonly Service[],
    private readonly log: Logger,
  ) {}

  /** Starts the services once: a second call is a bug of the caller, refused rather than starting everything twice. */
  start(): Promise<void> {
    if (this.starting) return Promise.reject(new Error('The services were started already'));
    this.starting = this.run();
    return this.starting;
  }

  async stop(): Promise<void> {
    this.stopping = true;
    await this.starting?.catch(() => undefined);
    await this.stopAll();
  }

  /**
   * A service started after the others (a connection a reload added): the runner stops it with
   * them, first. Refused once stopping: the caller stops it itself.
   */
  adopt(s: Service): boolean {
    if (this.stopping) return false;
    this.prepared.push(s);
    return true;
  }

  /** The /ready parts: every service that has a health, under its id. */
  health(): Record<string, Health> {
    return Object.fromEntries(this.services.flatMap((s) => (s.health ? [[s.id, s.health()]] : [])));
  }

  private async run(): Promise<void> {
    for (const phase of ['init', 'start'] as const) {
      for (const s of this.services) {
        if (this.stopping) return;
        try {
          if (phase === 'init') {
            // Stopped from now on even if its init throws half-way: stop() releases what it holds.
            this.prepared.push(s);
            await s.init?.();
          } else {
            await s.start();
          }
        } catch (err) {
          await this.stopAll();
          if (err instanceof GatewayError) throw err;
          throw new GatewayError(
            'GW_ERR_COMPONENT_START',
            `Cannot ${phase === 'init' ? 'prepare' : 'start'} ${s.name}: ${(err as Error).message}`,
            {
              cause: err,
            },
          );
        }
      }
    }
  }

  private async stopAll(): Promise<void> {
    while (this.prepared.length > 0) {
      const s = this.prepared.pop()!;
      let timer: NodeJS.Timeout | undefined;
      const t0 = Date.now();
      try {
        await Promise.race([
          s.stop(),
          new Promise((_, reject) => {
            timer = setTimeout(
              () => reject(new GatewayError('GW_ERR_STOP_TIMEOUT', `${s.name} did not stop within ${STOP_TIMEOUT_MS} ms`)),
              STOP_TIMEOUT_MS,
            );
          }),
        ]);
      } catch (err) {
        this.log.error({ err, component: s.name }, 'Component did not stop cleanly');
      } finally {
        clearTimeout(timer);
        this.log.debug({ component: s.name, ms: Date.now() - t0 }, 'Component stopped');
      }
    }
  }
}
