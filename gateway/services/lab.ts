// Lab results as a service: stored, published and sent to the platform by the result service; a
// result whose analyte is a declared point of its instrument is also a reading, so rules see it (a
// value outside its reference range can raise an alarm like any other). A control sample is not: its
// value says how the instrument measures, not what a sample holds; quality control judges it, and
// its verdicts and the lab drivers' events (a result file refused, then one taken) set the lab alarms.
import { rateLimited } from '../../drivers/common/log-budget.js';
import type { LabEvent, Reading } from '../../drivers/types.js';
import { resultFileConnectionsOf } from '../../drivers/index.js';
import { FILE_REJECTED_RULE, labSpecsOf } from '../../rules/lab-alarms.js';
import { controlSamplesOf, type QcApi } from '../lab/qc.js';
import { createResultService, type ResultService, type ResultServiceDeps } from '../lab/results.js';
import type { Service } from './service.js';

export interface LabService extends Service {
  readonly results: ResultService;
  /** Quality control's control series (Levey-Jennings charts). */
  readonly qc: QcApi;
  /** A lab driver's event: journaled (the daily summary counts them); a refused file raises the instrument's file.rejected alarm, the next file taken clears it. Never throws. */
  labEvent(e: LabEvent): void;
}

export interface LabServiceDeps extends ResultServiceDeps {
  /** Sets an external lab alarm's condition (the alarm service's setExternal); it runs before the lab service starts. */
  setAlarm?: (key: string, value: boolean, detail?: string) => void;
}

export function labService(deps: LabServiceDeps, readings: (batch: Reading[]) => void): LabService {
  const { log } = deps;
  const results = createResultService(deps);
  const isControl = controlSamplesOf(deps.config);
  const analytePoints = new Map(deps.config.equipment.map((e) => [e.id, new Set(e.points.map((p) => p.name))]));
  // The alarm keys the engine has: an event of another instrument sets none.
  const alarmKeys = new Set(labSpecsOf(deps.config, resultFileConnectionsOf(deps.config)).map((s) => `${s.equipment}/${s.id}`));
  const failedLog = rateLimited(60_000);
  const setAlarm = (key: string, value: boolean, detail?: string) => {
    if (!deps.setAlarm || !alarmKeys.has(key)) return;
    try {
      deps.setAlarm(key, value, detail);
    } catch (err) {
      failedLog((notLogged) => log.error({ err, alarm: key, ...(notLogged ? { notLogged } : {}) }, 'Cannot set a lab alarm'));
    }
  };
  results.onQcAlarms((alarms) => {
    for (const a of alarms) setAlarm(a.key, a.value, a.detail);
  });
  results.onResults((r) => {
    const batch = r
      .filter(
        (x) =>
          // A control not judged (no target for its level, QC failed on its batch) is no reading either.
          !isControl(x) && analytePoints.get(x.instrument)?.has(x.analyte) && (typeof x.value === 'number' || typeof x.value === 'string'),
      )
      .map((x) => ({ equipment: x.instrument, point: x.analyte, value: x.value, quality: 'good' as const, ts: Date.parse(x.resultAt) }));
    if (batch.length > 0) readings(batch);
  });
  return {
    id: 'lab',
    name: 'lab results',
    results,
    qc: results.qc,
    start: () => results.start(),
    stop: () => results.stop(),
    labEvent(e) {
      try {
        deps.store().appendJournal([{ ts: e.ts, kind: 'lab', equipment: e.instrument, body: e }]);
      } catch (err) {
        failedLog((notLogged) =>
          log.error(
            { err, instrument: e.instrument, event: e.kind, ...(notLogged ? { notLogged } : {}) },
            'Cannot journal a lab event: the daily summary will not count it',
          ),
        );
      }
      if (e.kind === 'file-rejected') setAlarm(`${e.instrument}/${FILE_REJECTED_RULE}`, true, `${e.file}: ${e.reason}`);
      else if (e.kind === 'file-taken') setAlarm(`${e.instrument}/${FILE_REJECTED_RULE}`, false);
    },
  };
}
