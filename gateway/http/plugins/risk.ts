// Risk judgement: each equipment's risk level with the factors that made it, its history, the
// site's ISA-18.2 alarm KPIs over a rolling window, and the daily safety report. The figures come
// from the risk service (gateway/risk/), handed over as a RiskApi; a site without one (risk.enabled:
// false) answers these routes with GW_HTTP_NO_RISK, so a client can tell "not judged here" from "no
// such route" and from "no such equipment".
import type { FastifyPluginAsync } from 'fastify';
import type { SiteConfig } from '../../../config/schema.js';
import type { KpiReport } from '../../../rules/kpi.js';
import type { RiskAssessment } from '../../../rules/risk.js';
import type { Level } from '../../../rules/types.js';
import { errorSchema, sendError } from '../errors.js';

/** One point of an equipment's risk history. */
export interface RiskHistoryPoint {
  ts: number;
  level: Level;
  score: number;
}

export type { KpiReport, RiskAssessment };

/** What the HTTP API reads from the risk service. */
export interface RiskApi {
  assessments(): RiskAssessment[];
  assessment(id: string): RiskAssessment | undefined;
  /** The equipment's levels and scores from `from` to `to` (epoch ms), oldest first. */
  history(id: string, from: number, to: number): RiskHistoryPoint[];
  kpi(windowMs: number, equipment?: string): KpiReport;
  /** The daily report of `date` (YYYY-MM-DD, site time) as HTML, when the gateway makes reports and has it. */
  report?(date: string): { html: string } | undefined;
}

export interface RiskOptions {
  config: SiteConfig;
  /** The risk service's API; a function when the service builds it at its init, after the API is made. */
  risk: RiskApi | (() => RiskApi | undefined) | undefined;
  now?: () => number;
}

const HOUR = 3_600_000;
const DAY = 24 * HOUR;
/** The longest history asked at once: a month of risk changes is what the dashboard and a review read. */
export const MAX_RANGE_MS = 31 * DAY;
export const KPI_WINDOWS = { '10m': 10 * 60_000, '1h': HOUR, '24h': DAY } as const;
const MAX_POINTS = 10_000;
const MAX_TIME = 8_640_000_000_000_000;

/**
 * The daily report is a page of its own, opened directly: it carries its own inline CSS (so it
 * prints alike from the data folder), and no script at all. Its policy forbids every script, allows
 * only its inline styles, and sandboxes it, since its text comes from site files and peers.
 */
const REPORT_CSP =
  "default-src 'none'; style-src 'unsafe-inline'; img-src data:; frame-ancestors 'none'; base-uri 'none'; form-action 'none'; sandbox";

/** A time given as epoch milliseconds or as an ISO 8601 date or date-time; undefined when it is neither. */
export function parseTime(text: string): number | undefined {
  // Beyond what a Date holds (8.64e15 ms, the year 275760) no time can be shown or compared.
  if (/^\d{1,16}$/.test(text)) return Number(text) <= MAX_TIME ? Number(text) : undefined;
  if (!/^\d{4}-\d{2}-\d{2}([T ]\d{2}:\d{2}(:\d{2}(\.\d{1,9})?)?(Z|[+-]\d{2}:?\d{2})?)?$/.test(text)) return undefined;
  const ms = Date.parse(text);
  return Number.isFinite(ms) ? ms : undefined;
}

/** The range a history request asks for: the last 24 h by default, at most MAX_RANGE_MS long. */
export function historyRange(query: { from?: string; to?: string }, now: number): { from: number; to: number } | { problem: string } {
  const to = query.to === undefined ? now : parseTime(query.to);
  if (to === undefined) return { problem: `to: expected epoch milliseconds or an ISO 8601 time, got "${query.to}"` };
  const from = query.from === undefined ? to - DAY : parseTime(query.from);
  if (from === undefined) return { problem: `from: expected epoch milliseconds or an ISO 8601 time, got "${query.from}"` };
  if (from > to) return { problem: `from (${new Date(from).toISOString()}) is after to (${new Date(to).toISOString()})` };
  if (to - from > MAX_RANGE_MS) return { problem: `the range is over ${MAX_RANGE_MS / DAY} days; ask for it in parts` };
  return { from, to };
}

/**
 * At most `max` points of a history, oldest first: the range cut into `max` equal spans, each giving
 * its highest score (a peak is what a review looks for), and the last point always kept so the line
 * ends where the equipment is now.
 */
export function thinHistory(points: RiskHistoryPoint[], max: number): RiskHistoryPoint[] {
  if (points.length <= max) return points;
  const first = points[0]!.ts;
  const span = points.at(-1)!.ts - first + 1;
  const buckets: RiskHistoryPoint[] = [];
  let current = -1;
  for (const p of points.slice(0, -1)) {
    const bucket = Math.min(max - 2, Math.floor(((p.ts - first) / span) * (max - 1)));
    if (bucket !== current) {
      buckets.push(p);
      current = bucket;
    } else if (p.score > buckets.at(-1)!.score) buckets[buckets.length - 1] = p;
  }
  buckets.push(points.at(-1)!);
  return buckets;
}

/** Whether a YYYY-MM-DD text is a date of the calendar. */
function isDate(text: string): boolean {
  const d = new Date(`${text}T00:00:00Z`);
  return Number.isFinite(d.getTime()) && d.toISOString().slice(0, 10) === text;
}

const levelSchema = { type: 'string', enum: ['blue', 'yellow', 'orange', 'red'] } as const;
const assessmentSchema = {
  type: 'object',
  additionalProperties: true,
  required: ['equipment', 'level', 'score', 'factors'],
  properties: {
    equipment: { type: 'string' },
    name: { type: 'string' },
    category: { type: 'string' },
    level: levelSchema,
    score: { type: 'number', description: 'The risk index, likelihood x consequence (1..20)' },
    likelihood: { type: 'number', description: '1..5, read from the points' },
    consequence: { type: 'number', description: "1..4, the equipment category's consequence class" },
    points: { type: 'number', description: "The factors' points summed" },
    factors: {
      type: 'array',
      items: {
        type: 'object',
        additionalProperties: true,
        properties: {
          factor: { type: 'string' },
          value: { type: 'number' },
          weight: { type: 'number' },
          cap: { type: 'number' },
          points: { type: 'number' },
          detail: { type: 'string' },
        },
      },
    },
    since: { type: 'number', description: 'When the level last changed (epoch ms)' },
    computedAt: { type: 'number' },
  },
} as const;
const errors = { 400: errorSchema, 404: errorSchema } as const;
const NO_RISK = 'this site judges no risk (risk.enabled is false)';

export const riskPlugin: FastifyPluginAsync<RiskOptions> = async (app, opts) => {
  const { config } = opts;
  const now = opts.now ?? Date.now;
  const riskApi = (): RiskApi | undefined => (typeof opts.risk === 'function' ? opts.risk() : opts.risk);
  const known = new Set(config.equipment.map((e) => e.id));

  app.get(
    '/api/risk',
    {
      config: { role: 'viewer' },
      schema: {
        summary: "Every equipment's risk level and its reasons, highest risk first",
        response: {
          200: {
            type: 'object',
            required: ['ts', 'site', 'equipment'],
            properties: { ts: { type: 'number' }, site: { type: 'string' }, equipment: { type: 'array', items: assessmentSchema } },
          },
          404: errorSchema,
        },
      },
    },
    async (_req, reply) => {
      const risk = riskApi();
      if (!risk) return sendError(reply, 'GW_HTTP_NO_RISK', NO_RISK);
      // Equal scores by points, then by id, so the order does not shuffle between two reads.
      const equipment = [...risk.assessments()].sort(
        (a, b) => b.score - a.score || b.points - a.points || (a.equipment < b.equipment ? -1 : a.equipment > b.equipment ? 1 : 0),
      );
      return { ts: now(), site: config.gateway.site, equipment };
    },
  );

  app.get(
    '/api/risk/:equipment',
    {
      config: { role: 'viewer' },
      schema: {
        summary: `One equipment's risk now and its history (levels and scores; the last 24 h unless from/to say otherwise, at most ${MAX_RANGE_MS / DAY} days; at most max_points points, each span's peak)`,
        params: { type: 'object', properties: { equipment: { type: 'string', maxLength: 200 } }, required: ['equipment'] },
        querystring: {
          type: 'object',
          additionalProperties: false,
          properties: {
            from: { type: 'string', maxLength: 40, description: 'Epoch ms or ISO 8601; default: 24 h before `to`' },
            to: { type: 'string', maxLength: 40, description: 'Epoch ms or ISO 8601; default: now' },
            max_points: { type: 'integer', minimum: 2, maximum: MAX_POINTS, default: 1000 },
          },
        },
        response: {
          200: {
            type: 'object',
            required: ['equipment', 'current', 'history'],
            properties: {
              equipment: { type: 'string' },
              from: { type: 'number' },
              to: { type: 'number' },
              current: { anyOf: [assessmentSchema, { type: 'null' }], description: 'null until the equipment is first assessed' },
              history: {
                type: 'array',
                items: { type: 'object', properties: { ts: { type: 'number' }, level: levelSchema, score: { type: 'number' } } },
              },
              thinned: { type: 'boolean', description: 'The history had more than max_points points: each span gives its peak' },
            },
          },
          ...errors,
        },
      },
    },
    async (req, reply) => {
      const { equipment } = req.params as { equipment: string };
      const query = req.query as { from?: string; to?: string; max_points: number };
      const risk = riskApi();
      if (!risk) return sendError(reply, 'GW_HTTP_NO_RISK', NO_RISK);
      if (!known.has(equipment)) return sendError(reply, 'GW_HTTP_NOT_FOUND', `no equipment ${equipment}`);
      const range = historyRange(query, now());
      if ('problem' in range) return sendError(reply, 'GW_HTTP_BAD_RANGE', range.problem);
      const all = risk.history(equipment, range.from, range.to);
      const history = thinHistory(all, query.max_points);
      return {
        equipment,
        ...range,
        current: risk.assessment(equipment) ?? null,
        history,
        ...(history.length < all.length ? { thinned: true } : {}),
      };
    },
  );

  app.get(
    '/api/kpi',
    {
      config: { role: 'viewer' },
      schema: {
        summary: 'ISA-18.2 alarm performance over a rolling window, for the site or one equipment',
        querystring: {
          type: 'object',
          additionalProperties: false,
          properties: {
            window: { type: 'string', enum: Object.keys(KPI_WINDOWS), default: '1h' },
            equipment: { type: 'string', maxLength: 200 },
          },
        },
        response: {
          200: {
            type: 'object',
            additionalProperties: true,
            properties: { window: { type: 'string' }, equipment: { type: 'string' }, windowMs: { type: 'number' } },
          },
          404: errorSchema,
        },
      },
    },
    async (req, reply) => {
      const { window, equipment } = req.query as { window: keyof typeof KPI_WINDOWS; equipment?: string };
      const risk = riskApi();
      if (!risk) return sendError(reply, 'GW_HTTP_NO_RISK', NO_RISK);
      if (equipment !== undefined && !known.has(equipment)) return sendError(reply, 'GW_HTTP_NOT_FOUND', `no equipment ${equipment}`);
      return { window, ...(equipment !== undefined ? { equipment } : {}), ...risk.kpi(KPI_WINDOWS[window], equipment) };
    },
  );

  app.get(
    '/api/reports/daily/:date',
    {
      config: { role: 'viewer' },
      schema: {
        summary: 'The daily safety report of one date (site time) as a printable HTML page',
        params: {
          type: 'object',
          properties: { date: { type: 'string', pattern: '^\\d{4}-\\d{2}-\\d{2}$', description: 'YYYY-MM-DD' } },
          required: ['date'],
        },
        response: { 200: { type: 'string', description: 'text/html' }, ...errors },
      },
    },
    async (req, reply) => {
      const { date } = req.params as { date: string };
      if (!isDate(date)) return sendError(reply, 'GW_HTTP_INVALID_REQUEST', `date: ${date} is not a date of the calendar`);
      const risk = riskApi();
      if (!risk) return sendError(reply, 'GW_HTTP_NO_RISK', NO_RISK);
      if (!risk.report) return sendError(reply, 'GW_HTTP_NO_REPORT', 'this gateway makes no daily report');
      const report = risk.report(date);
      if (!report) return sendError(reply, 'GW_HTTP_NO_REPORT', `no daily report for ${date}`);
      return reply.header('Content-Type', 'text/html; charset=utf-8').header('Content-Security-Policy', REPORT_CSP).send(report.html);
    },
  );
};
