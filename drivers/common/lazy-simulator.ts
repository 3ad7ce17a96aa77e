// A simulator whose module is imported when it starts: a site without it never loads its packages.
import type { Simulator } from '../types.js';

export function lazySimulator(load: () => Promise<Simulator>): Simulator {
  let inner: Simulator | undefined;
  return {
    async start() {
      inner = await load();
      await inner.start();
    },
    stop: async () => inner?.stop(),
  };
}
