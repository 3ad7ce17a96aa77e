// A driver whose implementation is imported by init(), not when the registry is read: the registry's
// schemas are all `gateway check` and the site loader need, and a site that does not use a driver
// never loads its packages (node-opcua, serialport).
import type { Driver } from '../types.js';

export function lazyDriver(load: () => Promise<Driver>): Driver {
  let inner: Driver | undefined;
  return {
    async init() {
      inner = await load();
      await inner.init();
    },
    async start() {
      if (!inner) throw new Error('Driver started before init()');
      await inner.start();
    },
    stop: async () => inner?.stop(),
    stats: () => inner?.stats?.() ?? {},
  };
}
