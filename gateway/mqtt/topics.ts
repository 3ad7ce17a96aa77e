// The MQTT topic contract (README.md, "How data flows"), in one place.
export interface Topics {
  telemetry(equipment: string): string;
  equipmentStatus(equipment: string): string;
  alarms(equipment: string): string;
  /** Lab results of an instrument. */
  results(instrument: string): string;
  /** An equipment's risk level with its reasons (retained). */
  risk(equipment: string): string;
  activeAlarms(): string;
  /** Site-wide alarm health events (alarm floods). */
  alarmHealth(): string;
  gatewayStatus(): string;
  /** Everything this site publishes, for subscribers. */
  all(): string;
}

export function topicsFor(prefix: string, site: string): Topics {
  const base = `${prefix}/${site}`;
  return {
    telemetry: (eq) => `${base}/${eq}/telemetry`,
    equipmentStatus: (eq) => `${base}/${eq}/status`,
    alarms: (eq) => `${base}/${eq}/alarms`,
    results: (eq) => `${base}/${eq}/results`,
    risk: (eq) => `${base}/${eq}/risk`,
    activeAlarms: () => `${base}/alarms/active`,
    alarmHealth: () => `${base}/alarms/health`,
    gatewayStatus: () => `${base}/gateway/status`,
    all: () => `${base}/#`,
  };
}

export type StatusState = 'online' | 'offline' | 'degraded';

/** Payload of the retained status topics. */
export interface StatusMessage {
  state: StatusState;
  reason?: string;
  ts?: number;
}

/**
 * Payload of a telemetry topic: one message per equipment per poll or notification, or several in
 * time order when a notification holds more than one value of a point (each point at most once).
 */
export interface TelemetryMessage {
  /** When the gateway received the newest value of the message (ms). */
  ts: number;
  values: Record<string, number | boolean | string | null>;
  quality: Record<string, 'good' | 'uncertain' | 'bad'>;
  /** Why a point is not good; present only when one is not. */
  reasons?: Record<string, string>;
  /** A point's own time (ms: its source time, else when it was read), present only where it is not `ts`. */
  times?: Record<string, number>;
}
