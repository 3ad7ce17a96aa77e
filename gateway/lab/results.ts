// Lab results from the drivers: each captured once (by its stable resultId, in the gateway's store,
// with the instrument's result counter in the same transaction), committed before the driver
// acknowledges it to its instrument, then published on MQTT
// (`gw/<site>/<instrument>/results`, QoS 1), written to InfluxDB (`lab_result`) and uploaded to the
// platform through the durable outbox (`gw.result.v1`, Idempotency-Key: resultId). Quality control
// (./qc.ts) judges a batch's control samples and marks its results before they are stored, its state
// committed in the same transaction; in hold mode a pending result's upload waits for a passing control.
import { Counter } from 'prom-client';
import { rateLimited } from '../../drivers/common/log-budget.js';
import type { LabResult } from '../../drivers/common/result.js';
import type { SiteConfig } from '../../config/schema.js';
import type { Logger } from '../log.js';
import type { Metrics } from '../metrics.js';
import type { MqttLink } from '../mqtt/link.js';
import type { Topics } from '../mqtt/topics.js';
import { resultBodyOf } from '../platform/contract.js';
import { Outbox } from '../platform/outbox.js';
import type { GatewayStore } from '../store.js';
import { createQc, type QcAlarm, type QcApi, type QcBatch } from './qc.js';

/** Results kept in memory for the dashboard (recent()). */
export const RECENT_RESULTS = 500;

/**
 * Results published on MQTT and not yet acknowledged by the broker, at most. A file of a million
 * rows is stored in seconds, far faster than a broker acknowledges; beyond this bound a result is
 * not published (counted and logged: it is in the store, and goes to the platform all the same),
 * so the client's queue cannot take the gateway's memory. room() keeps a bulk reader below it.
 */
export const MAX_UNACKED_RESULTS = 10_000;
/** room() waits until the unacknowledged publishes are down to this many. */
export const ROOM_RESULTS = 1000;
/** room() waits this long at most: a broker that is away must not stop results from being stored. */
export const ROOM_WAIT_MS = 5000;

export interface ResultService {
  start(): Promise<void>;
  stop(): Promise<void>;
  /**
   * Stores results durably, with the instrument's counter state when given, in one transaction
   * (throws when it cannot); returns those not captured before.
   */
  sink(results: LabResult[], counter?: { key: string; state: unknown }): LabResult[];
  onResults(listener: (results: readonly LabResult[]) => void): void;
  /** The last results captured (at most RECENT_RESULTS, with their QC marks, without `raw`), of one instrument or all, newest last. */
  recent(instrument?: string, limit?: number): LabResult[];
  /** Quality control's control series, for the dashboard. */
  readonly qc: QcApi;
  /** Receives the QC alarm conditions to set (a control judged; every one at start). */
  onQcAlarms(listener: (alarms: readonly QcAlarm[]) => void): void;
  /**
   * Resolves when the results before have been published (their MQTT publishes acknowledged down to
   * ROOM_RESULTS, or ROOM_WAIT_MS passed), after one turn of the event loop at least: a driver that
   * reads results in bulk (a file) awaits it between batches, so uploads and the rest of the
   * gateway get their turns and the publishes do not pile up.
   */
  room(): Promise<void>;
}

export interface ResultServiceDeps {
  config: SiteConfig;
  link: MqttLink;
  topics: Topics;
  log: Logger;
  metrics: Metrics;
  /** The gateway's store, open from start() on. */
  store: () => GatewayStore;
  /** The platform's outbox when the site forwards to one; results are then queued for upload too. */
  platformOutbox?: () => Outbox | undefined;
  notifyPlatform?: () => void;
}

export function createResultService(opts: ResultServiceDeps): ResultService {
  const { config, link, topics, log } = opts;
  const instruments = new Map(config.equipment.map((e) => [e.id, { id: e.id, category: e.category, name: e.name }]));
  const listeners: Array<(results: readonly LabResult[]) => void> = [];
  const alarmListeners: Array<(alarms: readonly QcAlarm[]) => void> = [];
  const qc = createQc({ config, log, metrics: opts.metrics });
  const recent: LabResult[] = [];
  const qcFailures = new Counter({
    name: 'gateway_lab_qc_failures_total',
    help: 'Batches of lab results stored without QC marks because judging them failed, by instrument',
    labelNames: ['instrument'],
    registers: [opts.metrics],
  });
  const qcFailedLog = rateLimited(60_000);
  let seen: ((resultId: string) => boolean) | undefined;
  const tellAlarms = (alarms: readonly QcAlarm[]) => {
    if (alarms.length === 0) return;
    for (const l of alarmListeners) {
      try {
        l(alarms);
      } catch (err) {
        log.error({ err }, 'QC alarm listener failed');
      }
    }
  };
  const unpublishedTotal = new Counter({
    name: 'gateway_lab_results_unpublished_total',
    help: `Lab results stored but not published on MQTT: ${MAX_UNACKED_RESULTS} publishes were awaiting the broker's acknowledgement`,
    labelNames: ['instrument'],
    registers: [opts.metrics],
  });
  const unpublishedLog = rateLimited();
  let unacked = 0;
  /** room() calls waiting for acknowledgements; each leaves the set when woken or timed out. */
  const waiting = new Set<() => void>();
  const acked = () => {
    unacked--;
    if (unacked <= ROOM_RESULTS) for (const wake of [...waiting]) wake();
  };
  const capturedTotal = new Counter({
    name: 'gateway_lab_results_total',
    help: 'Lab results captured (each once), by instrument',
    labelNames: ['instrument'],
    registers: [opts.metrics],
  });
  let own: Outbox | undefined;
  const store = () => opts.platformOutbox?.() ?? own;
  const forward = opts.platformOutbox !== undefined;
  const bodyOf = (r: LabResult) => resultBodyOf(r, instruments.get(r.instrument), config.gateway.id, config.gateway.site);
  /** A held result's body when its hold ends: as captured (qc pending), with the time it was let go. */
  const releasedBodyOf = (now: number) => (r: LabResult) => {
    const body = bodyOf(r);
    return body.qc ? { ...body, qc: { ...body.qc, releasedAt: new Date(now).toISOString() } } : body;
  };
  /** A batch judged by QC; a failure stores it unmarked (counted, logged), never loses it. */
  const judged = (results: LabResult[], isSeen: (id: string) => boolean, now: number): QcBatch | undefined => {
    try {
      return qc.apply(results, isSeen, now);
    } catch (err) {
      const instrument = results[0]?.instrument ?? '';
      qcFailures.inc({ instrument });
      qcFailedLog((notLogged) =>
        log.error(
          { err, instrument, results: results.length, ...(notLogged ? { notLogged } : {}) },
          'Quality control failed on a batch of results: they are stored without QC marks',
        ),
      );
      return undefined;
    }
  };

  return {
    async start() {
      // Without a platform the store still remembers every result, so none is taken twice.
      if (!opts.platformOutbox) own = new Outbox(opts.store());
      const db = opts.store();
      const known = db.db.prepare('SELECT 1 FROM result WHERE result_id = ?').pluck();
      seen = (id) => known.get(id) !== undefined;
      const alarms = qc.start(db);
      // Holds that ended while the gateway was down (or that the site file no longer asks for) end now.
      const s = store();
      if (s && forward) {
        const holds = (db.db.prepare('SELECT DISTINCT held FROM result WHERE held IS NOT NULL').pluck().all() as string[]).filter(
          (h) => !qc.stillHeld(h),
        );
        for (const h of holds) {
          const n = s.release(h, releasedBodyOf(Date.now()));
          log.info({ hold: h, results: n }, 'Results held for QC that no longer wait are uploaded');
        }
      }
      tellAlarms(alarms);
    },
    async stop() {
      own?.close();
      own = undefined;
    },
    sink(results, counter) {
      const s = store();
      if (!s || !seen) throw new Error('The result store is not open');
      const isSeen = seen;
      const now = Date.now();
      let batch: QcBatch | undefined;
      const fresh = opts.store().transaction(() => {
        batch = judged(results, isSeen, now);
        const taken = s.addResults(batch?.results ?? results, forward ? bodyOf : undefined, now, batch?.hold);
        batch?.save(opts.store(), (hold) => s.release(hold, releasedBodyOf(now), now));
        if (counter) opts.store().saveCounter(counter.key, counter.state);
        return taken;
      });
      if (batch) tellAlarms(batch.done());
      if (fresh.length === 0) return fresh;
      // Without the records as received: the ring stays a few hundred small objects whatever the instruments send.
      for (const r of fresh) recent.push(r.raw === undefined ? r : withoutRaw(r));
      if (recent.length > RECENT_RESULTS) recent.splice(0, recent.length - RECENT_RESULTS);
      if (forward) opts.notifyPlatform?.();
      let unpublished = 0;
      for (const r of fresh) {
        capturedTotal.inc({ instrument: r.instrument });
        if (unacked >= MAX_UNACKED_RESULTS) {
          unpublished++;
          continue;
        }
        unacked++;
        link.publishEvent(topics.results(r.instrument), r, false, acked);
      }
      if (unpublished > 0) {
        unpublishedTotal.inc({ instrument: fresh[0]!.instrument }, unpublished);
        unpublishedLog((notLogged) =>
          log.warn(
            { instrument: fresh[0]!.instrument, unpublished, unacknowledged: unacked, ...(notLogged ? { notLogged } : {}) },
            'Lab results stored but not published on MQTT: the broker is not acknowledging (counted; they go to the platform all the same)',
          ),
        );
      }
      // One line per batch: a message of thousands of results must not write thousands of lines.
      const first = fresh[0]!;
      if (fresh.length === 1)
        log.info(
          {
            instrument: first.instrument,
            sampleId: first.sampleId,
            analyte: first.analyte,
            value: first.value,
            unit: first.unit,
            resultId: first.resultId,
          },
          'Lab result captured',
        );
      else
        log.info(
          { instrument: first.instrument, results: fresh.length, samples: [...new Set(fresh.map((r) => r.sampleId))].slice(0, 10) },
          'Lab results captured',
        );
      for (const l of listeners) {
        try {
          l(fresh);
        } catch (err) {
          log.error({ err }, 'Result listener failed');
        }
      }
      return fresh;
    },
    async room() {
      await new Promise<void>((resolve) => setImmediate(resolve));
      if (unacked <= ROOM_RESULTS) return;
      await new Promise<void>((resolve) => {
        const wake = () => {
          clearTimeout(timer);
          waiting.delete(wake);
          resolve();
        };
        const timer = setTimeout(wake, ROOM_WAIT_MS);
        waiting.add(wake);
      });
    },
    onResults: (l) => void listeners.push(l),
    onQcAlarms: (l) => void alarmListeners.push(l),
    recent(instrument, limit = RECENT_RESULTS) {
      const list = instrument === undefined ? recent : recent.filter((r) => r.instrument === instrument);
      return list.slice(Math.max(0, list.length - Math.max(0, Math.floor(limit))));
    },
    qc: qc.api,
  };
}

function withoutRaw(r: LabResult): LabResult {
  const { raw: _raw, ...rest } = r;
  return rest;
}
