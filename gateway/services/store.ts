// The data folder and the durable store (alarm states, outbox, lab results, driver counters), prepared
// before anything else: every other service may read or write them from its start on.
import { join } from 'node:path';
import type { AlarmService } from '../alarms/service.js';
import { prepareDataDir } from '../data-dir.js';
import { checkDataFolderFormats } from '../data-format.js';
import type { Logger } from '../log.js';
import { GatewayStore, STORE_FILE } from '../store.js';
import type { Service } from './service.js';

export interface StoreService extends Service {
  /** The open store; throws when it is not open (before init, after stop). */
  store(): GatewayStore;
  /** The store when open, undefined otherwise. */
  current(): GatewayStore | undefined;
}

/** `writes` tells whether the store can write now (the alarm service sees it first), for /ready. */
export function storeService(dataDir: string, log: Logger, writes: () => ReturnType<AlarmService['storeStats']>): StoreService {
  let store: GatewayStore | undefined;
  return {
    id: 'store',
    name: 'store',
    store() {
      if (!store) throw new Error('The store is not open');
      return store;
    },
    current: () => store,
    async init() {
      // Owner only (0700, files 0600): what was left more open is tightened before anything opens it.
      prepareDataDir(dataDir, log.child({ component: 'data' }));
      // A folder from a newer gateway is refused before any component opens a file in it.
      checkDataFolderFormats(dataDir);
      store = new GatewayStore(join(dataDir, STORE_FILE));
    },
    async start() {},
    async stop() {
      store?.close();
      store = undefined;
    },
    // Not ready while it cannot write, with why.
    health() {
      const stats = writes();
      return { ok: stats.writable, detail: stats.writable ? stats : { ...stats, reason: `store not writable: ${stats.error}` } };
    },
  };
}
