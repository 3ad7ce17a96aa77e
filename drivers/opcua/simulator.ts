// An OPC UA server modelling a traction elevator (GB/T 24476 items), for the demo and the tests.
// It runs with security None or with Sign / SignAndEncrypt (Basic256Sha256 and the newer policies),
// anonymous or with users, and counts the monitored items its clients created.
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import {
  coerceLocalizedText,
  DataType,
  MessageSecurityMode,
  OPCUACertificateManager,
  OPCUAServer,
  SecurityPolicy,
  StatusCodes,
  Variant,
  VariantArrayType,
  makeEUInformation,
  type UAVariable,
} from 'node-opcua';
import { elevatorAt, type ElevatorScenario, type ElevatorState } from './elevator-model.js';

export interface ElevatorServerOptions {
  port: number;
  host?: string;
  /** Browse name of the elevator object and prefix of its NodeIds (`ns=1;s=<id>.Floor`). */
  id?: string;
  scenario: ElevatorScenario;
  seed?: number;
  /** `none`: only security None; `secure`: only Sign and SignAndEncrypt; `all`: both. */
  security?: 'none' | 'secure' | 'all';
  users?: Record<string, string>;
  allowAnonymous?: boolean;
  /** Folder of the server's own certificate store. */
  pkiDir: string;
  /** Accept any client certificate (tests of the client side's own trust). */
  trustAllClients?: boolean;
  /** Also serve a lab analyzer object with this browse name (result counter, sample id, GLU, CHOL). */
  labAnalyzer?: string;
  /**
   * Also serve a LADS device with this browse name: <name>/FunctionalUnitSet/FU1/ProgramManager/ResultSet,
   * NodeId ns=1;s=<name>.FU1.ProgramManager.ResultSet; completeRun() adds a Result object to it.
   */
  lads?: string;
  /**
   * Also serve variables whose values are too big for a gateway to take (tests of max_value_size),
   * NodeIds ns=1;s=<id>.Oversized.<Name>: String, ByteString, DoubleArray, Xml, LocalizedText and
   * Struct (an EUInformation) of about `bytes` bytes each, and Huge, a String of `hugeBytes`.
   */
  oversized?: { bytes: number; hugeBytes?: number };
}

export const ELEVATOR_VARIABLES: Record<keyof ElevatorState, { dataType: DataType; unit?: string; browseName: string }> = {
  floor: { dataType: DataType.Int16, browseName: 'Floor' },
  direction: { dataType: DataType.Int16, browseName: 'Direction' },
  running: { dataType: DataType.Boolean, browseName: 'Running' },
  door_open: { dataType: DataType.Boolean, browseName: 'DoorOpen' },
  in_door_zone: { dataType: DataType.Boolean, browseName: 'InDoorZone' },
  passenger_present: { dataType: DataType.Boolean, browseName: 'PassengerPresent' },
  load: { dataType: DataType.Double, unit: 'kg', browseName: 'Load' },
  speed: { dataType: DataType.Double, unit: 'm/s', browseName: 'Speed' },
  safety_circuit: { dataType: DataType.Boolean, browseName: 'SafetyCircuit' },
  door_lock_circuit: { dataType: DataType.Boolean, browseName: 'DoorLockCircuit' },
  main_power: { dataType: DataType.Boolean, browseName: 'MainPower' },
  service_mode: { dataType: DataType.Int16, browseName: 'ServiceMode' },
  fault_code: { dataType: DataType.Int16, browseName: 'FaultCode' },
  run_count: { dataType: DataType.UInt32, browseName: 'RunCount' },
};

export interface ElevatorServer {
  start(): Promise<void>;
  stop(): Promise<void>;
  endpoint(): string;
  /** Monitored items that clients hold on this server right now. */
  monitoredItemCount(): number;
  stateAt(now: number): ElevatorState;
  /** Make one variable answer with a bad status (a broken sensor). */
  breakVariable(name: keyof ElevatorState, broken: boolean): void;
  /** With `labAnalyzer`: a new result (counter + 1, a sample id, values); returns what it shows. */
  produceResult(): { counter: number; sampleId: string; values: Record<string, number> };
  /** With `lads`: a program run ends, and its Result object appears in the ResultSet. */
  completeRun(sampleId: string, values: Record<string, number>, opts?: { stopped?: boolean }): { run: string };
}

/** The lab analyzer object of the simulator (`labAnalyzer` option): ns=1;s=<id>.ResultCounter, .SampleId, .GLU, .CHOL */
const LAB_ANALYTES = ['GLU', 'CHOL'] as const;

export function createElevatorServer(opts: ElevatorServerOptions): ElevatorServer {
  let runs = 0;
  let addRun: ((sampleId: string, values: Record<string, number>, stopped: boolean) => { run: string }) | undefined;
  const lab = { counter: 0, sampleId: '', values: { GLU: 0, CHOL: 0 } as Record<string, number> };
  const id = opts.id ?? 'Lift3';
  const origin = Date.now();
  const broken = new Set<string>();
  let server: OPCUAServer | undefined;
  const stateAt = (now: number) => elevatorAt(now - origin, opts.scenario, opts.seed ?? 1);

  return {
    async start() {
      mkdirSync(opts.pkiDir, { recursive: true });
      const serverCertificateManager = new OPCUACertificateManager({
        rootFolder: join(opts.pkiDir, 'server'),
        automaticallyAcceptUnknownCertificate: opts.trustAllClients ?? true,
      });
      const security = opts.security ?? 'all';
      const modes =
        security === 'none'
          ? [MessageSecurityMode.None]
          : security === 'secure'
            ? [MessageSecurityMode.Sign, MessageSecurityMode.SignAndEncrypt]
            : [MessageSecurityMode.None, MessageSecurityMode.Sign, MessageSecurityMode.SignAndEncrypt];
      const policies =
        security === 'none'
          ? [SecurityPolicy.None]
          : [
              ...(security === 'all' ? [SecurityPolicy.None] : []),
              SecurityPolicy.Basic256Sha256,
              SecurityPolicy.Aes128_Sha256_RsaOaep,
              SecurityPolicy.Aes256_Sha256_RsaPss,
            ];
      const users = opts.users;
      const s = new OPCUAServer({
        port: opts.port,
        host: opts.host ?? '127.0.0.1',
        hostname: opts.host ?? '127.0.0.1',
        resourcePath: '/elevator',
        serverCertificateManager,
        securityModes: modes,
        securityPolicies: policies,
        allowAnonymous: opts.allowAnonymous ?? true,
        userManager: users ? { isValidUser: (user: string, password: string) => users[user] === password } : undefined,
        buildInfo: { productName: 'Elevator simulator', manufacturerName: 'special-equipment-gateway' },
        alternateHostname: ['127.0.0.1'],
      });
      await s.initialize();
      const addressSpace = s.engine.addressSpace!;
      const namespace = addressSpace.getOwnNamespace();
      const lift = namespace.addObject({ organizedBy: addressSpace.rootFolder.objects, browseName: id, nodeId: `s=${id}` });
      for (const [key, v] of Object.entries(ELEVATOR_VARIABLES) as Array<
        [keyof ElevatorState, (typeof ELEVATOR_VARIABLES)[keyof ElevatorState]]
      >) {
        const variable: UAVariable = namespace.addVariable({
          componentOf: lift,
          browseName: v.browseName,
          nodeId: `s=${id}.${v.browseName}`,
          dataType: v.dataType,
          minimumSamplingInterval: 100,
          value: {
            get: () => {
              if (broken.has(key)) return StatusCodes.BadSensorFailure;
              return new Variant({ dataType: v.dataType, value: stateAt(Date.now())[key] });
            },
          },
        });
        void variable;
      }
      if (opts.oversized) {
        const { bytes, hugeBytes } = opts.oversized;
        const text = 'x'.repeat(bytes);
        const values: Array<[string, DataType, unknown, VariantArrayType?]> = [
          ['String', DataType.String, text],
          ['ByteString', DataType.ByteString, Buffer.alloc(bytes, 0x55)],
          ['DoubleArray', DataType.Double, new Float64Array(Math.ceil(bytes / 8)), VariantArrayType.Array],
          ['Xml', DataType.XmlElement, `<a>${text}</a>`],
          ['LocalizedText', DataType.LocalizedText, coerceLocalizedText({ text, locale: 'en' })],
          ['Struct', DataType.ExtensionObject, makeEUInformation('x', text, text)],
          ...(hugeBytes !== undefined ? [['Huge', DataType.String, 'h'.repeat(hugeBytes)] as [string, DataType, unknown]] : []),
        ];
        for (const [name, dataType, value, arrayType] of values) {
          namespace.addVariable({
            componentOf: lift,
            browseName: `Oversized${name}`,
            nodeId: `s=${id}.Oversized.${name}`,
            dataType,
            ...(arrayType !== undefined ? { valueRank: 1 } : {}),
            minimumSamplingInterval: 100,
            value: { get: () => new Variant({ dataType, value, ...(arrayType !== undefined ? { arrayType } : {}) }) },
          });
        }
      }
      if (opts.labAnalyzer) {
        const la = opts.labAnalyzer;
        const obj = namespace.addObject({ organizedBy: addressSpace.rootFolder.objects, browseName: la, nodeId: `s=${la}` });
        const add = (name: string, dataType: DataType, get: () => unknown) =>
          namespace.addVariable({
            componentOf: obj,
            browseName: name,
            nodeId: `s=${la}.${name}`,
            dataType,
            minimumSamplingInterval: 100,
            value: { get: () => new Variant({ dataType, value: get() }) },
          });
        add('ResultCounter', DataType.UInt32, () => lab.counter);
        add('SampleId', DataType.String, () => lab.sampleId);
        for (const a of LAB_ANALYTES) add(a, DataType.Double, () => lab.values[a]);
      }
      if (opts.lads) {
        const name = opts.lads;
        const device = namespace.addObject({ organizedBy: addressSpace.rootFolder.objects, browseName: name, nodeId: `s=${name}` });
        const fuSet = namespace.addObject({ componentOf: device, browseName: 'FunctionalUnitSet', nodeId: `s=${name}.FunctionalUnitSet` });
        const fu = namespace.addObject({ componentOf: fuSet, browseName: 'FU1', nodeId: `s=${name}.FU1` });
        const pm = namespace.addObject({ componentOf: fu, browseName: 'ProgramManager', nodeId: `s=${name}.FU1.ProgramManager` });
        const resultSet = namespace.addObject({
          componentOf: pm,
          browseName: 'ResultSet',
          nodeId: `s=${name}.FU1.ProgramManager.ResultSet`,
        });
        addRun = (sampleId, values, stopped) => {
          const n = ++runs;
          const run = `RUN-${String(n).padStart(4, '0')}`;
          const prefix = `s=${name}.FU1.ProgramManager.ResultSet.${run}`;
          const result = namespace.addObject({ componentOf: resultSet, browseName: run, nodeId: prefix });
          const prop = (browseName: string, dataType: DataType, value: unknown, arrayType?: VariantArrayType) =>
            namespace.addVariable({
              propertyOf: result,
              browseName,
              nodeId: `${prefix}.${browseName}`,
              dataType,
              value: new Variant({ dataType, value, ...(arrayType !== undefined ? { arrayType } : {}) }),
            });
          // Samples is SampleInfoType[] in LADS; this simulator gives the sample ids as text.
          prop('Samples', DataType.String, [sampleId], VariantArrayType.Array);
          prop('Started', DataType.DateTime, new Date(Date.now() - 60_000));
          prop('Stopped', DataType.DateTime, stopped ? new Date() : new Date(0));
          prop('User', DataType.String, 'lab-op');
          prop('DeviceProgramRunId', DataType.String, run);
          const set = namespace.addObject({ componentOf: result, browseName: 'VariableSet', nodeId: `${prefix}.VariableSet` });
          for (const [analyte, value] of Object.entries(values)) {
            namespace.addAnalogDataItem({
              componentOf: set,
              browseName: analyte,
              nodeId: `${prefix}.VariableSet.${analyte}`,
              dataType: 'Double',
              engineeringUnitsRange: { low: 0, high: 100 },
              engineeringUnits: makeEUInformation('mmol/L', 'mmol/L', 'millimole per litre'),
              value: new Variant({ dataType: DataType.Double, value }),
            });
          }
          return { run };
        };
      }
      await s.start();
      server = s;
    },
    async stop() {
      const s = server;
      server = undefined;
      if (s) await s.shutdown(0);
    },
    endpoint: () => `opc.tcp://${opts.host ?? '127.0.0.1'}:${opts.port}/elevator`,
    monitoredItemCount() {
      const engine = server?.engine;
      if (!engine) return 0;
      return engine
        .getSessions()
        .reduce((n, session) => n + session.publishEngine.subscriptions.reduce((m, sub) => m + sub.monitoredItemCount, 0), 0);
    },
    stateAt,
    completeRun(sampleId, values, o = {}) {
      if (!addRun) throw new Error('This simulator serves no LADS device (the lads option)');
      return addRun(sampleId, values, o.stopped ?? true);
    },
    produceResult() {
      // The values first, then the counter: a reader that sees the new counter finds the new result.
      const n = lab.counter + 1;
      lab.sampleId = `OP-${String(n).padStart(5, '0')}`;
      lab.values = { GLU: Math.round((4 + ((n * 37) % 40) / 10) * 100) / 100, CHOL: Math.round((3.5 + ((n * 53) % 30) / 10) * 100) / 100 };
      lab.counter = n;
      return { counter: n, sampleId: lab.sampleId, values: { ...lab.values } };
    },
    breakVariable(name, isBroken) {
      if (isBroken) broken.add(name);
      else broken.delete(name);
    },
  };
}
