// Errors users can meet carry a stable code; docs/errors.md explains each (a test keeps them equal).
export const ERROR_CODES = {
  GW_ERR_CONFIG_INVALID: 'The site file does not pass validation; every problem is listed as `path: message`.',
  GW_ERR_CONFIG_READ: 'The site file cannot be read (missing, unreadable, or not a file).',
  GW_ERR_USAGE: 'The command line is not understood.',
  GW_ERR_BROKER_LISTEN: 'The embedded MQTT broker cannot listen on its host and port (in use, or not allowed).',
  GW_ERR_COMPONENT_START: 'A gateway component could not start; the gateway stops the ones already started and exits.',
  GW_ERR_STOP_TIMEOUT: 'A component did not stop in time during shutdown; the gateway exits anyway.',
  GW_ERR_INPUT: 'A file given to a command (readings or actions CSV) has a line that cannot be read.',
  GW_ERR_LISTEN: 'A server the gateway runs on its own (the platform inbox) cannot listen on its host and port.',
  GW_ERR_STORE:
    'The durable store (alarm states, platform outbox, lab results) cannot be opened, read or migrated, or a file of the data folder was written by a newer gateway; the gateway does not start rather than forget or misread what it holds.',
  GW_ERR_AUDIT: 'The audit journal does not verify: an entry was changed, removed or inserted.',
  GW_ERR_AUDIT_KEY:
    "The audit journal's key (GATEWAY_AUDIT_KEY or <data_dir>/audit.key) is malformed, or missing while the journal has keyed entries.",
  GW_ERR_AUDIT_LOCK: "An audit entry could not be written: another process held the journal's lock for too long.",
} as const;

export type ErrorCode = keyof typeof ERROR_CODES;

export class GatewayError extends Error {
  constructor(
    readonly code: ErrorCode,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = 'GatewayError';
  }
}

export interface ConfigProblem {
  /** Where in the site file: `equipment[2].points[0].type`. */
  path: string;
  message: string;
  /** 1-based line in the site file, where the parser knows it. */
  line?: number | undefined;
}

export class ConfigError extends GatewayError {
  constructor(
    readonly file: string,
    readonly problems: ConfigProblem[],
  ) {
    super(
      'GW_ERR_CONFIG_INVALID',
      `${file}: ${problems.length} problem${problems.length === 1 ? '' : 's'}\n${problems.map(formatProblem).join('\n')}`,
    );
    this.name = 'ConfigError';
  }
}

export function formatProblem(p: ConfigProblem): string {
  return `${p.path}: ${p.message}${p.line ? ` (line ${p.line})` : ''}`;
}
