// Equipment: the list with each one's status, one equipment with every point's last value, and the
// recent readings of one point for the dashboard's trend (from memory, the older part from InfluxDB).
// What they serve is kept from the pipeline's batches: the last reading of every point, and a ring
// of recent readings per declared point.
import type { FastifyPluginAsync } from 'fastify';
import type { HttpSection } from '../../../config/http-schema.js';
import type { SiteConfig } from '../../../config/schema.js';
import { rateLimited } from '../../../drivers/common/log-budget.js';
import type { Reading } from '../../../drivers/types.js';
import { InfluxQueryError, MAX_QUERY_ROWS, queryPoint } from '../../influx/query.js';
import type { Logger } from '../../log.js';
import type { MemoryWatch } from '../../memory.js';
import type { Pipeline } from '../../pipeline.js';
import { errorSchema, sendError } from '../errors.js';
import { History, planHistory } from '../history.js';

/** How long the trend waits for older readings from InfluxDB. */
const HISTORY_QUERY_TIMEOUT = 5000;

export interface ReadingsOptions {
  config: SiteConfig;
  history: HttpSection['history'];
  pipeline: Pick<Pipeline, 'onBatch'>;
  log: Logger;
  /** Where the trend rings' memory is reported. */
  memory?: MemoryWatch;
}

/** What the equipment routes serve: the last reading of every point, and the recent ones of each. */
export interface EquipmentReadings {
  last(equipment: string, point: string): Reading | undefined;
  /** The rings of the equipment and points of the config as the last replan() found it. */
  readonly history: History;
  /**
   * Makes the rings again from the config's equipment and points (a reload, docs/reload.md): a point
   * that is still there, with the same unit, keeps its recent readings (as many as its new ring
   * holds, the newest); a new point gets a ring; a removed point or equipment is forgotten.
   */
  replan(): void;
}

/**
 * Keeps the readings the equipment routes serve, from the pipeline's batches. Made when the API is
 * built, before the plugin is loaded at listen, so that it holds the readings from the first on.
 */
export function equipmentReadings(opts: ReadingsOptions): EquipmentReadings {
  const { config, log } = opts;
  const last = new Map<string, Map<string, Reading>>();
  const unitsOf = () =>
    new Map(config.equipment.flatMap((e) => e.points.map((p): [string, string | undefined] => [`${e.id}/${p.name}`, p.unit])));
  // Recent readings of every declared point, for the dashboard's trend, in rings made up front.
  const build = (): History => {
    const plan = planHistory({
      keep: opts.history.keep,
      maxBytes: opts.history.max_memory,
      // A point read at its own interval keeps `keep` at that interval; one that reports on change keeps as many changes.
      points: config.equipment.flatMap((e) =>
        e.points.map((p) => {
          const own =
            (p as { poll_interval?: number; sampling_interval?: number }).poll_interval ??
            (p as { sampling_interval?: number }).sampling_interval;
          return { key: `${e.id}/${p.name}`, intervalMs: own ?? e.poll_interval };
        }),
      ),
    });
    if (plan.scale < 1) {
      log.warn(
        {
          points: plan.samples.size,
          wanted_bytes: plan.wantedBytes,
          max_memory: opts.history.max_memory,
          kept: `${(plan.scale * 100).toFixed(0)} %`,
        },
        'http.history.keep needs more than http.history.max_memory for this many points: every point keeps proportionally fewer recent readings (raise max_memory, or shorten keep)',
      );
    }
    return new History(plan);
  };
  let history = build();
  let units = unitsOf();
  opts.memory?.register('http_history', () => history.bytes());
  opts.pipeline.onBatch((batch) => {
    for (const r of batch) {
      let m = last.get(r.equipment);
      if (!m) last.set(r.equipment, (m = new Map()));
      m.set(r.point, r);
    }
    history.add(batch);
  });
  return {
    last: (equipment, point) => last.get(equipment)?.get(point),
    get history() {
      return history;
    },
    replan() {
      const before = history;
      const unitsBefore = units;
      history = build();
      units = unitsOf();
      for (const [equipment, points] of [...last]) {
        for (const point of [...points.keys()]) if (!units.has(`${equipment}/${point}`)) points.delete(point);
        if (points.size === 0) last.delete(equipment);
      }
      for (const e of config.equipment)
        for (const p of e.points) {
          const key = `${e.id}/${p.name}`;
          const was = before.ring(e.id, p.name);
          const now = history.ring(e.id, p.name);
          // Readings in another unit would draw a false trend: a point whose unit changed starts afresh.
          if (!was || !now || unitsBefore.get(key) !== p.unit) continue;
          for (const sample of was.read(-Infinity, now.capacity)) now.push(sample.ts, sample.value, sample.quality);
        }
    },
  };
}

export interface EquipmentOptions {
  config: SiteConfig;
  readings: EquipmentReadings;
  pipeline: Pick<Pipeline, 'status'>;
  log: Logger;
  /** Whether an equipment reports on change (an old value is then not stale), from its driver's definition. */
  reportsOnChange: (equipmentId: string) => boolean;
}

const valueSchema = { type: ['number', 'boolean', 'string', 'null'] } as const;

export const equipmentPlugin: FastifyPluginAsync<EquipmentOptions> = async (app, opts) => {
  const { config, log } = opts;
  const historyLog = rateLimited();
  const { reportsOnChange } = opts;
  // One InfluxDB query at a time.
  let querying = false;

  app.get(
    '/api/equipment',
    {
      config: { role: 'viewer' },
      schema: {
        summary: 'Equipment with status',
        response: {
          200: {
            type: 'array',
            items: {
              type: 'object',
              required: ['id', 'category', 'status'],
              properties: {
                id: { type: 'string' },
                name: { type: 'string' },
                category: { type: 'string' },
                code: { type: 'string' },
                status: { type: 'string' },
                reason: { type: 'string' },
                poll_interval: { type: 'number' },
                on_change: { type: 'boolean', description: 'Reported on change (an OPC UA subscription, say): an old value is not stale.' },
              },
            },
          },
        },
      },
    },
    async () =>
      config.equipment.map((e) => {
        const s = opts.pipeline.status(e.id);
        return {
          id: e.id,
          ...(e.name ? { name: e.name } : {}),
          category: e.category,
          ...(e.code ? { code: e.code } : {}),
          status: s?.state ?? 'unknown',
          ...(s?.reason ? { reason: s.reason } : {}),
          poll_interval: e.poll_interval,
          on_change: reportsOnChange(e.id),
        };
      }),
  );

  app.get(
    '/api/equipment/:id',
    {
      config: { role: 'viewer' },
      schema: {
        summary: "One equipment with every point's last value, unit, quality and time",
        params: { type: 'object', properties: { id: { type: 'string' } }, required: ['id'] },
        response: {
          200: {
            type: 'object',
            required: ['id', 'points'],
            properties: {
              id: { type: 'string' },
              name: { type: 'string' },
              category: { type: 'string' },
              status: { type: 'string' },
              points: {
                type: 'array',
                items: {
                  type: 'object',
                  required: ['name', 'quality'],
                  properties: {
                    name: { type: 'string' },
                    value: valueSchema,
                    unit: { type: 'string' },
                    quality: { type: 'string' },
                    reason: { type: 'string' },
                    ts: { type: 'number' },
                  },
                },
              },
            },
          },
          404: errorSchema,
        },
      },
    },
    async (req, reply) => {
      const id = (req.params as { id: string }).id;
      const e = config.equipment.find((x) => x.id === id);
      if (!e) return sendError(reply, 'GW_HTTP_NOT_FOUND', `no equipment ${id}`);
      return {
        id,
        ...(e.name ? { name: e.name } : {}),
        category: e.category,
        status: opts.pipeline.status(id)?.state ?? 'unknown',
        points: e.points.map((p) => {
          const r = opts.readings.last(id, p.name);
          return {
            name: p.name,
            value: r?.value ?? null,
            ...(p.unit ? { unit: p.unit } : {}),
            quality: r?.quality ?? 'unknown',
            ...(r?.reason ? { reason: r.reason } : {}),
            ...(r ? { ts: r.ts } : {}),
          };
        }),
      };
    },
  );

  app.get(
    '/api/equipment/:id/history',
    {
      config: { role: 'viewer' },
      schema: {
        summary:
          'Recent readings of one point, oldest first: what the gateway keeps in memory (http.history), optionally from a time on and at most `limit`, the newest',
        params: { type: 'object', properties: { id: { type: 'string' } }, required: ['id'] },
        querystring: {
          type: 'object',
          properties: {
            point: { type: 'string' },
            since: {
              type: 'integer',
              minimum: 0,
              maximum: 8_640_000_000_000_000,
              description:
                'Epoch ms: readings at or after it. Older than memory holds: the older part comes from InfluxDB when the site writes to one (header x-history-source); x-history-incomplete says when it could not.',
            },
            limit: { type: 'integer', minimum: 1, maximum: MAX_QUERY_ROWS, default: MAX_QUERY_ROWS },
          },
          required: ['point'],
        },
        response: {
          200: {
            type: 'array',
            items: { type: 'object', properties: { ts: { type: 'number' }, value: valueSchema, quality: { type: 'string' } } },
          },
          400: errorSchema,
          404: errorSchema,
        },
      },
    },
    async (req, reply) => {
      const { id } = req.params as { id: string };
      const { point, since, limit = MAX_QUERY_ROWS } = req.query as { point: string; since?: number; limit?: number };
      // The schema's bounds let Infinity through (ajv compares it as a number).
      if (since !== undefined && !Number.isFinite(since))
        return sendError(reply, 'GW_HTTP_INVALID_REQUEST', 'since: expected epoch milliseconds');
      const ring = opts.readings.history.ring(id, point);
      const equipment = config.equipment.find((e) => e.id === id);
      if (!ring || !equipment) return sendError(reply, 'GW_HTTP_NOT_FOUND', `no point ${point} on equipment ${id}`);
      const recent = ring.read(since, limit);
      const oldest = ring.oldest();
      void reply.header('x-history-source', 'memory');
      // Further back than memory goes: the older part from InfluxDB, when the site writes to one.
      if (since === undefined || (oldest !== undefined && since >= oldest) || recent.length >= limit) return recent;
      const missing = oldest === undefined ? 'memory holds nothing yet' : `memory holds from ${oldest}`;
      if (!config.influx) return reply.header('x-history-incomplete', `${missing}; no InfluxDB`).send(recent);
      // One query at a time: viewers cannot pile requests onto InfluxDB and the gateway.
      if (querying) return reply.header('x-history-incomplete', `${missing}; InfluxDB busy with another query`).send(recent);
      querying = true;
      try {
        const older = await queryPoint(config.influx, {
          measurement: equipment.category,
          site: config.gateway.site,
          equipment: id,
          point,
          since,
          until: oldest ?? Date.now() + 1,
          limit: limit - recent.length,
          timeoutMs: HISTORY_QUERY_TIMEOUT,
        });
        void reply.header('x-history-source', 'influxdb+memory');
        return [...older, ...recent];
      } catch (err) {
        // The detail (InfluxDB's words, its address) goes to the log; the caller learns what kind of failure it was.
        historyLog((notLogged) =>
          log.warn(
            { err, equipment: id, point, ...(notLogged ? { notLogged } : {}) },
            'Older readings could not be read from InfluxDB; the trend shows what memory holds',
          ),
        );
        return reply
          .header('x-history-incomplete', `${missing}; InfluxDB ${err instanceof InfluxQueryError ? err.kind : 'failed'}`)
          .send(recent);
      } finally {
        querying = false;
      }
    },
  );
};
