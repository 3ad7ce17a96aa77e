// The central platform's stand-in (`simulators: - type: platform-inbox`), started like a driver's
// simulator: the demo and the tests watch incidents arrive in it.
import { join } from 'node:path';
import { platformInboxSimulatorSchema } from '../../config/platform-schema.js';
import { lazySimulator } from '../../drivers/common/lazy-simulator.js';
import { defineSimulator } from '../../drivers/types.js';

export const platformInboxSimulator = defineSimulator({
  type: 'platform-inbox',
  schema: platformInboxSimulatorSchema,
  create: (s, { dataDir, log }) =>
    lazySimulator(async () => {
      const inboxLog = log.child({ component: 'platform-inbox' });
      const { createPlatformInbox } = await import('./inbox.js');
      // The ids it has taken stay in the data folder: a restarted demo still recognises a resent event.
      return createPlatformInbox({
        host: s.host,
        port: s.port,
        secret: s.secret,
        out: s.out,
        state: s.state ?? join(dataDir, `platform-inbox-${s.port}.db`),
        print: (line) => inboxLog.info(`Platform inbox: ${line}`),
      });
    }),
});
