// The worker thread of config/check.ts: checks one site file text and posts the outcome. It runs
// with an empty environment and a capped heap and stack; whatever the text makes the parser do
// happens here, not on the gateway's event loop.
import { parentPort } from 'node:worker_threads';
import { ConfigError, type ConfigProblem } from './errors.js';
import { parseSite } from './load.js';

export interface CheckRequest {
  text: string;
}

export type CheckReply = { ok: true; notes: ConfigProblem[] } | { ok: false; problems: ConfigProblem[]; notes: ConfigProblem[] };

const port = parentPort;
if (!port) throw new Error('config/check-worker.ts runs as a worker thread of config/check.ts');

port.on('message', ({ text }: CheckRequest) => {
  const notes: ConfigProblem[] = [];
  let reply: CheckReply;
  try {
    // No environment and no echo: the file is someone else's, checked with this gateway's code.
    parseSite(text, { file: '(request)', env: false, echoValues: false, onNote: (n) => notes.push(n) });
    reply = { ok: true, notes };
  } catch (err) {
    // No problems: only values that placeholders stand for were not checked (their notes say so).
    if (err instanceof ConfigError) reply = err.problems.length === 0 ? { ok: true, notes } : { ok: false, problems: err.problems, notes };
    // A failure of the checker itself is named, not shown as a stack: the text may have caused it.
    else
      reply = {
        ok: false,
        problems: [{ path: '(yaml)', message: `cannot be checked: ${err instanceof Error ? err.name : 'the checker failed'}` }],
        notes,
      };
  }
  port.postMessage(reply);
});
port.postMessage('ready');
