// OPC UA LADS (OPC 30500-1): results of program runs in a functional unit's program manager. Each
// Result object under ResultSet carries Samples (SampleInfoType[]: ContainerId, SampleId...), Started
// and Stopped, User, optionally DeviceProgramRunId, and a VariableSet with the measured variables
// (their EngineeringUnits give the unit). New Result objects are read when they appear; each result
// is captured once, by an id made of the run and the analyte.
import { AttributeIds, BrowseDirection, type ClientSession, NodeClass, type NodeIdLike } from 'node-opcua';
import type { Logger } from 'pino';
import { resultIdFromSequence, type LabResult } from '../common/result.js';
import type { ResultSink } from '../types.js';
import { valueOf, variantSize } from './values.js';

export interface LadsStats {
  ladsResults: number;
  ladsErrors: number;
}

interface Child {
  nodeId: NodeIdLike;
  name: string;
  nodeClass: NodeClass;
}

export class LadsResultReader {
  /** Result objects taken (or refused for good) in this process: not browsed into again. */
  private readonly done = new Set<string>();
  private busy = false;
  private lastError: string | undefined;
  readonly stats: LadsStats = { ladsResults: 0, ladsErrors: 0 };

  constructor(
    private readonly equipment: string,
    private readonly resultSet: NodeIdLike,
    private readonly sink: ResultSink,
    private readonly log: Logger,
    /** A value bigger than this fails the result (max_value_size); nothing is taken from it. */
    private readonly maxValueSize = 64 * 1024,
  ) {}

  /** Looks for new Result objects and takes them; called on the equipment's poll interval. */
  async scan(session: ClientSession): Promise<void> {
    if (this.busy) return;
    this.busy = true;
    try {
      const results = (await children(session, this.resultSet)).filter((c) => c.nodeClass === NodeClass.Object);
      for (const r of results) {
        const key = String(r.nodeId);
        if (this.done.has(key)) continue;
        const taken = await this.take(session, r);
        if (taken) this.done.add(key);
      }
      this.lastError = undefined;
    } catch (err) {
      this.fail(`the ResultSet could not be browsed: ${(err as Error).message.split('\n')[0]}`);
    } finally {
      this.busy = false;
    }
  }

  private async take(session: ClientSession, result: Child): Promise<boolean> {
    const parts = await children(session, result.nodeId);
    const find = (name: string) => parts.find((p) => p.name === name);
    const props = ['Samples', 'Stopped', 'Started', 'User', 'DeviceProgramRunId'].map((n) => find(n));
    const present = props.map((p, k) => ({ p, k })).filter((x) => x.p);
    const values = await session.read(present.map((x) => ({ nodeId: x.p!.nodeId, attributeId: AttributeIds.Value })));
    const oversized = values.find((dv) => variantSize(dv.value) > this.maxValueSize);
    if (oversized)
      return this.refuse(`result ${result.name}: value of ${variantSize(oversized.value)} bytes, at most ${this.maxValueSize}`);
    const v: Array<unknown> = [];
    present.forEach((x, k) => (v[x.k] = values[k]!.value?.value));
    const sampleIds = sampleIdsOf(v[0]);
    if (sampleIds.length === 0) return this.fail(`result ${result.name} has no sample id in Samples`);
    const stopped = v[1] instanceof Date ? v[1] : v[2] instanceof Date ? v[2] : undefined;
    if (!stopped || stopped.getTime() <= 0) return this.fail(`result ${result.name} has not stopped yet`);
    const run = typeof v[4] === 'string' && v[4] ? v[4] : result.name;
    const variableSet = find('VariableSet');
    if (!variableSet) return this.fail(`result ${result.name} has no VariableSet`);
    const variables = (await children(session, variableSet.nodeId)).filter((c) => c.nodeClass === NodeClass.Variable);
    const read = await session.read(variables.map((c) => ({ nodeId: c.nodeId, attributeId: AttributeIds.Value })));
    const tooBig = read.findIndex((dv) => variantSize(dv.value) > this.maxValueSize);
    if (tooBig >= 0)
      return this.refuse(
        `result ${result.name}, ${variables[tooBig]!.name}: value of ${variantSize(read[tooBig]!.value)} bytes, at most ${this.maxValueSize}`,
      );
    const units = await Promise.all(variables.map((c) => unitOf(session, c.nodeId)));
    const operator = typeof v[3] === 'string' && v[3] ? v[3] : undefined;
    const out: LabResult[] = [];
    variables.forEach((c, k) => {
      const raw = valueOf(read[k]!.value?.value, read[k]!.value?.dataType);
      const value = typeof raw === 'boolean' ? Number(raw) : raw;
      // One sample: every variable is its. Several: a variable named <sample>.<analyte> says whose.
      const [sampleId, analyte] = sampleIds.length === 1 ? [sampleIds[0]!, c.name] : splitName(c.name, sampleIds);
      if (!sampleId) return;
      out.push({
        resultId: resultIdFromSequence(this.equipment, run, `${sampleId}/${analyte}`),
        instrument: this.equipment,
        sampleId,
        analyte,
        value,
        ...(units[k] ? { unit: units[k] } : {}),
        flags: [],
        status: 'final',
        resultAt: stopped.toISOString(),
        ...(operator ? { operator } : {}),
        method: run,
      });
    });
    if (out.length === 0) return this.fail(`result ${result.name} has no variables in its VariableSet`);
    this.sink(out);
    this.stats.ladsResults += out.length;
    return true;
  }

  /** Logged once per reason; the result object is looked at again at the next scan. */
  /** A result that cannot become one however often it is read (a value over max_value_size): not read again. */
  private refuse(reason: string): boolean {
    this.stats.ladsErrors++;
    this.log.error({ equipment: this.equipment, reason }, 'LADS result refused; not read again');
    return true;
  }

  private fail(reason: string): boolean {
    this.stats.ladsErrors++;
    if (reason !== this.lastError) this.log.warn({ equipment: this.equipment, reason }, 'LADS result not taken yet');
    this.lastError = reason;
    return false;
  }
}

async function children(session: ClientSession, nodeId: NodeIdLike): Promise<Child[]> {
  const [r] = await session.browse([
    {
      nodeId,
      browseDirection: BrowseDirection.Forward,
      includeSubtypes: true,
      nodeClassMask: NodeClass.Object | NodeClass.Variable,
      resultMask: 63,
      referenceTypeId: 'HierarchicalReferences',
    },
  ]);
  return (r?.references ?? []).map((ref) => ({ nodeId: ref.nodeId, name: ref.browseName.name ?? '', nodeClass: ref.nodeClass }));
}

/** The unit of a variable from its EngineeringUnits property (EUInformation), when it has one. */
async function unitOf(session: ClientSession, nodeId: NodeIdLike): Promise<string | undefined> {
  const eu = (await children(session, nodeId)).find((c) => c.name === 'EngineeringUnits');
  if (!eu) return undefined;
  const [dv] = await session.read([{ nodeId: eu.nodeId, attributeId: AttributeIds.Value }]);
  const info = dv?.value?.value as { displayName?: { text?: string } } | undefined;
  return info?.displayName?.text ?? undefined;
}

/** Samples: SampleInfoType structures (with SampleId), or plain strings from simpler servers. */
function sampleIdsOf(samples: unknown): string[] {
  const list = Array.isArray(samples) ? samples : samples === undefined || samples === null ? [] : [samples];
  return list
    .map((s) =>
      typeof s === 'string'
        ? s
        : typeof s === 'object' && s !== null
          ? String((s as Record<string, unknown>).sampleId ?? (s as Record<string, unknown>).SampleId ?? '')
          : '',
    )
    .filter((s) => /^[\x21-\x7e][\x20-\x7e]{0,63}$/.test(s));
}

function splitName(name: string, samples: readonly string[]): [string | undefined, string] {
  const s = samples.find((x) => name.startsWith(`${x}.`));
  return s ? [s, name.slice(s.length + 1)] : [undefined, name];
}
