// Vitest global setup for the integration and e2e tests: real servers for the whole run.
import type { TestProject } from 'vitest/node';
import type {} from 'vitest';
import { ensurePackages, startInfluxDb, startMosquitto, startVictoriaMetrics, type RunningServer } from '../helpers/processes.js';

export interface ServerAddress {
  host: string;
  port: number;
  url: string;
}

declare module 'vitest' {
  export interface ProvidedContext {
    mosquitto: ServerAddress;
    influxdb: ServerAddress;
    victoriametrics: ServerAddress;
  }
}

export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  ensurePackages();
  const servers: RunningServer[] = [];
  const stopAll = () => Promise.all(servers.map((s) => s.stop())).then(() => undefined);
  try {
    const [mosquitto, influxdb, victoriametrics] = await Promise.all([startMosquitto(), startInfluxDb(), startVictoriaMetrics()]);
    servers.push(mosquitto, influxdb, victoriametrics);
    const address = (s: RunningServer): ServerAddress => ({ host: s.host, port: s.port, url: s.url });
    project.provide('mosquitto', address(mosquitto));
    project.provide('influxdb', address(influxdb));
    project.provide('victoriametrics', address(victoriametrics));
  } catch (err) {
    await stopAll();
    throw err;
  }
  return stopAll;
}
