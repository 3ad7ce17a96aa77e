import type { Logger } from 'pino';
import type { z } from 'zod';
import type { LabResult } from './common/result.js';

export type Quality = 'good' | 'uncertain' | 'bad';

/** One value of one point, as a driver read it. A value of bad quality is always null, never a number. */
export interface Reading {
  equipment: string;
  point: string;
  value: number | boolean | string | null;
  quality: Quality;
  /** Why the quality is not good: "timeout", "exception 2: illegal data address", "BadNodeIdUnknown"... */
  reason?: string;
  /** Device or OPC UA source time in ms, when the device reports one. */
  sourceTs?: number;
  /** Gateway time in ms when the reading was taken. */
  ts: number;
}

/** Drivers hand over the readings of one poll or one notification at once. */
export type ReadingSink = (batch: Reading[]) => void;

/** The keys every equipment entry has, whatever its connection. */
export interface EquipmentBase {
  id: string;
  name?: string | undefined;
  code?: string | undefined;
  category: string;
  connection: string;
  poll_interval: number;
  description?: string | undefined;
}

export interface PointBase {
  name: string;
  unit?: string | undefined;
  description?: string | undefined;
}

export interface ConnectionBase {
  id: string;
  type: string;
}

/**
 * Where lab results go: stored durably when this returns (it throws when they could not be), so a
 * driver acknowledges a result to its instrument only after this. A counter state given is committed
 * in the same transaction as the results.
 */
export type ResultSink = (results: LabResult[], counter?: { key: string; state: unknown }) => void;

/** Small durable states of drivers (lab instruments' result counters), in the gateway's store. */
export interface CounterStore {
  /** The state saved under `key`, undefined when there is none. */
  get(key: string): unknown;
  /** Commits it (throws when the store cannot write). */
  save(key: string, state: unknown): void;
}

export interface DriverContext {
  log: Logger;
  sink: ReadingSink;
  /** Lab results (drivers of lab instruments). */
  results?: ResultSink;
  /** Durable small states (result counters), readable from init() on; the gateway always gives one. */
  counters?: CounterStore;
  /** The gateway's data folder, for files a driver keeps (certificates). */
  dataDir: string;
}

/**
 * The lifecycle every driver follows: the factory only stores its options (they were validated up
 * front by the schemas below); init() prepares local state, start() opens connections and keeps
 * retrying on its own, stop() releases everything. One failing device never throws out of here:
 * it turns into readings of bad quality.
 */
export interface Driver {
  init(): Promise<void>;
  start(): Promise<void>;
  stop(): Promise<void>;
  /** Counters for logs and metrics (requests, failures, overruns...). */
  stats?(): Record<string, number>;
}

/** A driver as the registry lists it. Its schemas validate the site file up front, so create() only stores. */
export interface DriverDefinition {
  /** The connection `type` this driver serves, as written in the site file. */
  type: string;
  /** One line for the configuration reference. */
  summary: string;
  /** A strict object: `id`, `type` and the driver's connection options. */
  connectionSchema: z.ZodObject;
  /** A strict object of the driver's own equipment keys, `points` included; the base keys are not part of it. */
  equipmentSchema: z.ZodObject;
  /** The driver's point schema, for the JSON Schema and the reference. */
  pointSchema: z.ZodObject;
  /** Receives the connection and equipment exactly as the schemas above output them. */
  create(connection: ConnectionConfig, equipment: EquipmentConfig[], ctx: DriverContext): Driver;
}

export type ConnectionConfig = ConnectionBase & Record<string, unknown>;
export type EquipmentConfig = EquipmentBase & { points: PointBase[] } & Record<string, unknown>;
