// What the gateway's MQTT link is given and what it offers, for the runtime, the pipeline, the rules,
// the benchmarks and tests.
import type { MqttSection } from '../../config/schema.js';
import type { Logger } from '../log.js';
import type { Metrics } from '../metrics.js';
import type { StatusMessage, TelemetryMessage, Topics } from './topics.js';

export interface MqttLinkStats {
  connected: boolean;
  /** Telemetry messages published and acknowledged by the broker. */
  delivered: number;
  /** Telemetry messages awaiting the broker's acknowledgement. */
  pending: number;
  /** Embedded broker: characters of those messages, held in memory meanwhile (with an external broker they wait on disk). */
  pendingChars?: number;
  /** Telemetry messages dropped: max_pending reached (embedded broker), or the outgoing queue full (external). */
  dropped: number;
  /** Messages not published because they were bigger than mqtt.max_packet_size (a broker would close the connection). */
  oversized?: number;
  /** External broker: telemetry messages on disk until the broker acknowledges them. */
  queued: number;
  queuedBytes: number;
  oldestQueuedAt: number | undefined;
}

export interface MqttLink {
  start(): Promise<void>;
  stop(): Promise<void>;
  publishTelemetry(equipment: string, message: TelemetryMessage): void;
  /** Retained; never dropped. */
  publishStatus(topic: string, status: StatusMessage): void;
  /**
   * The gateway's own status (retained on `gw/<site>/gateway/status`, also after a reconnect):
   * `degraded` with a reason while a part of it does not work (the store cannot write), else online.
   */
  setGatewayHealth(degradedReason: string | undefined): void;
  /** Alarm events, the active alarm list, lab results: QoS 1, never dropped by a bound. */
  /** `done`: once the broker acknowledged it, or with the reason it was not sent. */
  publishEvent(topic: string, payload: unknown, retain: boolean, done?: (err?: Error) => void): void;
  /** Clears a retained topic (an empty retained message): what a removed equipment left. */
  clearRetained(topic: string): void;
  stats(): MqttLinkStats;
}

/**
 * The link as createMqttLink makes it: its part of /ready too (connected, and the figures of stats()).
 * Kept apart from MqttLink, which stands for anything the pipeline and the rules publish through.
 */
export interface MqttLinkService extends MqttLink {
  health(): { ok: boolean; detail: MqttLinkStats };
}

export interface MqttLinkOptions {
  /** Read when start() runs: the embedded broker knows its port only once it listens. */
  url: () => string;
  config: MqttSection;
  clientId: string;
  topics: Topics;
  log: Logger;
  /** Wait for the first connection in start() (the embedded broker); an external broker is awaited by nobody. */
  waitForConnection: boolean;
  /** External broker: the outgoing queue's file; telemetry then waits on disk and the session persists. */
  queueFile?: string;
  metrics?: Metrics;
}
