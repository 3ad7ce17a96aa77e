import type { Logger } from 'pino';
import type { z } from 'zod';
import type { LabResult } from './common/result.js';
import type { DriverCommands } from './commands.js';

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
 * in the same transaction as the results. The gateway's sink returns those not captured before (a
 * driver may tell a message sent again by it); a sink that does not know returns nothing.
 */
export type ResultSink = (results: LabResult[], counter?: { key: string; state: unknown }) => LabResult[] | void;

/** Small durable states of drivers (lab instruments' result counters), in the gateway's store. */
export interface CounterStore {
  /** The state saved under `key`, undefined when there is none. */
  get(key: string): unknown;
  /** Commits it (throws when the store cannot write). */
  save(key: string, state: unknown): void;
}

/**
 * What a lab driver reports besides its results: a result file taken or refused (file-drop), a
 * message refused (HL7 AE/AR). The gateway journals each one (the daily upload summary counts them)
 * and a refused file raises the instrument's `file.rejected` alarm, which the next file taken clears.
 */
export type LabEvent =
  | { kind: 'file-taken'; instrument: string; file: string; results: number; ts: number }
  | { kind: 'file-rejected'; instrument: string; file: string; reason: string; ts: number }
  | { kind: 'message-refused'; instrument: string; reason: string; controlId?: string; ts: number };

export interface DriverContext {
  log: Logger;
  sink: ReadingSink;
  /** Lab results (drivers of lab instruments). */
  results?: ResultSink;
  /** Lab drivers' events (drivers of lab instruments; never throws). */
  labEvents?: (event: LabEvent) => void;
  /**
   * Resolves when the gateway can take more results at once (lab drivers): a driver that reads
   * results in bulk (a file of a million rows) awaits it between batches, so the results' MQTT
   * publishes and uploads keep up and the rest of the gateway gets its turns.
   */
  resultRoom?: () => Promise<void>;
  /** Durable small states (result counters), readable from init() on; the gateway always gives one. */
  counters?: CounterStore;
  /** The gateway's data folder, for files a driver keeps (certificates). */
  dataDir: string;
  /** The site's time zone (gateway.timezone), for device times written without one (result files). */
  timeZone?: string;
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

export type ConnectionConfig = ConnectionBase & Record<string, unknown>;
export type EquipmentConfig = EquipmentBase & { points: PointBase[] } & Record<string, unknown>;

/** What the rest of the gateway may know of a driver; it learns nothing else about it. */
export interface DriverCapabilities<E = EquipmentConfig> {
  /**
   * Values arrive when they change (a subscription), not on the equipment's poll interval: an old
   * value is not stale (the dashboard, the `stale` rule). Per equipment when its settings decide.
   */
  reportsOnChange: boolean | ((equipment: E) => boolean);
  /** It captures lab results: only then does its DriverContext carry `results`. */
  labResults: boolean;
  /** It takes result files, and refuses those that do not read: its instruments get a `file.rejected` alarm. */
  resultFiles?: boolean;
  /**
   * It writes to devices. No driver does yet and the gateway offers no writes; the flag is where a
   * write path (setpoints from the API) will learn which connections may take one.
   */
  writes: boolean;
}

/** A device simulator the site file may start (its `simulators:` entry), for the demo and tests. */
export interface Simulator {
  start(): Promise<void>;
  stop(): Promise<void>;
}

export interface SimulatorContext {
  log: Logger;
  /** The gateway's data folder (a simulator's own keys, certificates the gateway should trust). */
  dataDir: string;
}

export interface SimulatorSpec<S extends z.ZodObject> {
  /** The `type` of its `simulators:` entry; the schema's `type` is this literal. */
  type: string;
  /** A strict object: `type`, `host`, `port` and the simulator's options. */
  schema: S;
  /** Takes seconds to start (node-opcua): started after the quick parts, still before the drivers that read it. */
  slowStart?: boolean;
  /** Builds it from the entry exactly as the schema outputs it; its modules load in start(). */
  create(config: z.output<S>, ctx: SimulatorContext): Simulator;
}

/** A simulator as the registry lists it: the types erased, see defineSimulator. */
export interface SimulatorDefinition {
  type: string;
  schema: z.ZodObject;
  slowStart: boolean;
  create(config: { type: string; host: string; port: number } & Record<string, unknown>, ctx: SimulatorContext): Simulator;
}

export interface DriverSpec<C extends z.ZodObject, E extends z.ZodObject, P extends z.ZodObject> {
  /** The connection `type` this driver serves, as written in the site file. */
  type: string;
  /** One line for the configuration reference. */
  summary: string;
  /** A strict object: `id`, `type` and the driver's connection options. */
  connectionSchema: C;
  /** A strict object of the driver's own equipment keys, `points` (an array of pointSchema) included; the base keys are not part of it. */
  equipmentSchema: E;
  /** The driver's point schema, for the JSON Schema and the reference. */
  pointSchema: P;
  capabilities: DriverCapabilities<EquipmentBase & z.output<E>>;
  /** Its connections take seconds to start (node-opcua): they are opened after the quick ones. */
  slowStart?: boolean;
  /** Simulators of the devices it reads. */
  simulators?: SimulatorDefinition[];
  /** Its commands (`gateway scan modbus`, `gateway browse`...). */
  commands?: DriverCommands;
  /** Receives the connection and its equipment exactly as the schemas above output them. */
  create(connection: z.output<C>, equipment: Array<EquipmentBase & z.output<E>>, ctx: DriverContext): Driver;
}

/** A driver as the registry lists it: its types erased, see defineDriver. */
export interface DriverDefinition {
  type: string;
  summary: string;
  connectionSchema: z.ZodObject;
  equipmentSchema: z.ZodObject;
  pointSchema: z.ZodObject;
  capabilities: { reportsOnChange(equipment: EquipmentConfig): boolean; labResults: boolean; resultFiles: boolean; writes: boolean };
  slowStart: boolean;
  simulators: readonly SimulatorDefinition[];
  commands: DriverCommands | undefined;
  create(connection: ConnectionConfig, equipment: EquipmentConfig[], ctx: DriverContext): Driver;
}

/**
 * A driver for the registry. The spec's `create` is typed by its own schemas; the registry holds
 * drivers of every type, so the types are erased here, once: the site loader parses every connection
 * with its driver's connectionSchema and every equipment entry with its equipmentSchema (and the
 * base keys) before anything reaches `create`, which is what makes this the one cast.
 */
export function defineDriver<C extends z.ZodObject, E extends z.ZodObject, P extends z.ZodObject>(
  spec: DriverSpec<C, E, P>,
): DriverDefinition {
  type Equipment = EquipmentBase & z.output<E>;
  const onChange = spec.capabilities.reportsOnChange;
  return {
    type: spec.type,
    summary: spec.summary,
    connectionSchema: spec.connectionSchema,
    equipmentSchema: spec.equipmentSchema,
    pointSchema: spec.pointSchema,
    capabilities: {
      reportsOnChange: typeof onChange === 'function' ? (e) => onChange(e as unknown as Equipment) : () => onChange,
      labResults: spec.capabilities.labResults,
      resultFiles: spec.capabilities.resultFiles ?? false,
      writes: spec.capabilities.writes,
    },
    slowStart: spec.slowStart ?? false,
    simulators: spec.simulators ?? [],
    commands: spec.commands,
    create: (connection, equipment, ctx) => spec.create(connection as z.output<C>, equipment as unknown as Equipment[], ctx),
  };
}

/** A simulator for the registry; as with defineDriver, its entry was parsed by its schema before create. */
export function defineSimulator<S extends z.ZodObject>(spec: SimulatorSpec<S>): SimulatorDefinition {
  return {
    type: spec.type,
    schema: spec.schema,
    slowStart: spec.slowStart ?? false,
    create: (config, ctx) => spec.create(config as z.output<S>, ctx),
  };
}
