// The worker thread of gateway/report/job.ts: builds and writes one daily report from the store file,
// opened read-only, and posts the report and its file paths back. The main thread commits them.
import { parentPort } from 'node:worker_threads';
import { type ReportJob, type ReportJobReply, runReportJob } from './job.js';

const port = parentPort;
if (!port) throw new Error('gateway/report/job-worker.ts runs as a worker thread of gateway/report/job.ts');

port.on('message', (job: ReportJob) => {
  let reply: ReportJobReply;
  try {
    reply = { ok: true, result: runReportJob(job) };
  } catch (err) {
    // The message (with a GatewayError's or the system's code) is what the schedule logs; a stack would say nothing more to an operator.
    const code = (err as { code?: unknown }).code;
    reply = { ok: false, message: err instanceof Error ? err.message : String(err), ...(typeof code === 'string' ? { code } : {}) };
  }
  port.postMessage(reply);
});
port.postMessage('ready');
