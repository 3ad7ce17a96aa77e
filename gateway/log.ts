import { pino, type DestinationStream, type Logger, type LevelWithSilent } from 'pino';
import pretty from 'pino-pretty';
import { redact } from './redact.js';

export type { Logger } from 'pino';

/** Keys whose values never reach a log line. */
const REDACT = ['password', '*.password', '*.*.password', 'secret', '*.secret', 'token', '*.token', 'headers.authorization'];

/**
 * One root logger per process; components take children (`log.child({ component: 'mqtt' })`).
 * JSON lines for machines; readable lines when a person watches a terminal.
 */
export function createLogger(opts: { level?: LevelWithSilent; pretty?: boolean; destination?: NodeJS.WritableStream } = {}): Logger {
  const options = { level: opts.level ?? 'info', redact: { paths: REDACT, censor: '[redacted]' } };
  const usePretty = opts.pretty ?? (process.stdout.isTTY === true && !process.env.CI);
  if (usePretty) {
    return pino(
      options,
      redacting(
        pretty({ sync: true, colorize: true, translateTime: 'SYS:HH:MM:ss.l', ignore: 'pid,hostname', destination: opts.destination ?? 1 }),
      ),
    );
  }
  // Synchronous writes: the last lines before an exit are the ones that matter most.
  return pino(options, redacting(opts.destination ?? pino.destination({ dest: 1, sync: true })));
}

/**
 * Every line, whole, through redact() before it is written: URLs with credentials reach log lines
 * in messages, fields, bindings, error messages and stacks alike, and the finished line is the one
 * place that sees them all. Lines without `://` or `=` pass untouched (redact() checks that first).
 */
function redacting(stream: DestinationStream | NodeJS.WritableStream): DestinationStream {
  return { write: (line: string) => void stream.write(redact(line)) };
}
