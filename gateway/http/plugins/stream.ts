// The live stream: Server-Sent Events of reading batches (`readings`) and alarm events (`alarm`),
// for all equipment or one. A client that does not read is disconnected rather than buffered for.
import type { FastifyPluginAsync } from 'fastify';
import { rateLimited } from '../../../drivers/common/log-budget.js';
import type { AlarmEvent } from '../../../rules/types.js';
import type { AlarmService } from '../../alarms/service.js';
import type { Logger } from '../../log.js';
import type { MemoryWatch } from '../../memory.js';
import type { Pipeline } from '../../pipeline.js';

/** A live-stream client that lets this much pile up unread is disconnected: the gateway does not buffer for it. */
const SSE_MAX_BUFFERED = 1024 * 1024;
/** A comment line this often keeps proxies and the idle timeout from closing a quiet stream. */
const KEEP_ALIVE_MS = 15_000;

interface Client {
  equipment: string | undefined;
  send: (event: string, data: string) => void;
  end: () => void;
  buffered: () => number;
}

export interface LiveStreamOptions {
  pipeline: Pick<Pipeline, 'onBatch'>;
  alarms: Pick<AlarmService, 'onEvents'>;
  /** Where the clients' unsent bytes are reported. */
  memory?: MemoryWatch;
}

/** The live stream's clients, fed from the pipeline and the alarms. */
export interface LiveStream {
  add(client: Client): void;
  remove(client: Client): void;
  /** Ends every client's stream (at stop). */
  endAll(): void;
}

/**
 * Subscribes to readings and alarm events for the live stream's clients. Made when the API is built,
 * before the plugin is loaded at listen, as the other subscribers are.
 */
export function liveStream(opts: LiveStreamOptions): LiveStream {
  const clients = new Set<Client>();
  opts.memory?.register('http_live_stream', () => {
    let sum = 0;
    for (const c of clients) sum += c.buffered();
    return sum;
  });
  opts.pipeline.onBatch((batch) => {
    if (clients.size === 0) return;
    // Serialised once for every client that takes all equipment, not once per client.
    let all: string | undefined;
    for (const c of clients) {
      if (!c.equipment) {
        c.send('readings', (all ??= JSON.stringify(batch)));
        continue;
      }
      const mine = batch.filter((r) => r.equipment === c.equipment);
      if (mine.length > 0) c.send('readings', JSON.stringify(mine));
    }
  });
  opts.alarms.onEvents((events: readonly AlarmEvent[]) => {
    if (clients.size === 0) return;
    // Each event serialised once, whatever the number of clients.
    const texts = events.map((e) => JSON.stringify(e));
    for (const c of clients) {
      events.forEach((e, k) => {
        if (!c.equipment || e.equipment === c.equipment) c.send('alarm', texts[k]!);
      });
    }
  });
  return {
    add: (c) => void clients.add(c),
    remove: (c) => void clients.delete(c),
    endAll() {
      for (const c of clients) c.end();
      clients.clear();
    },
  };
}

export interface StreamOptions {
  stream: LiveStream;
  log: Logger;
}

export const streamPlugin: FastifyPluginAsync<StreamOptions> = async (app, opts) => {
  const { stream, log } = opts;
  const slowClientLog = rateLimited();
  // The streams end before the server closes: it waits for open requests, and a stream never ends by itself.
  app.addHook('preClose', async () => stream.endAll());

  app.get(
    '/api/stream',
    {
      config: { role: 'viewer' },
      schema: {
        summary: 'Server-Sent Events: `readings` (batches) and `alarm` (events), optionally for one equipment',
        querystring: { type: 'object', properties: { equipment: { type: 'string' } } },
      },
    },
    async (req, reply) => {
      const equipment = (req.query as { equipment?: string }).equipment;
      reply.hijack();
      const res = reply.raw;
      res.writeHead(200, { 'Content-Type': 'text/event-stream', 'Cache-Control': 'no-store', Connection: 'keep-alive' });
      res.write(': connected\n\n');
      const client: Client = {
        equipment,
        send: (event, data) => {
          if (res.writableLength > SSE_MAX_BUFFERED) {
            // A client that does not read would make the gateway hold every event for it.
            stream.remove(client);
            res.destroy();
            slowClientLog((notLogged) =>
              log.warn(
                { ip: req.ip, buffered: res.writableLength, ...(notLogged ? { notLogged } : {}) },
                'Live stream client does not read; disconnected',
              ),
            );
            return;
          }
          res.write(`event: ${event}\ndata: ${data}\n\n`);
        },
        end: () => res.end(),
        buffered: () => res.writableLength,
      };
      stream.add(client);
      const keepAlive = setInterval(() => res.write(': keep-alive\n\n'), KEEP_ALIVE_MS);
      req.raw.on('close', () => {
        clearInterval(keepAlive);
        stream.remove(client);
      });
    },
  );
};
