// A stale rule learns from the driver's definition whether silence means a lost connection.
import { describe, expect, it } from 'vitest';
import { parseSite } from '../../../config/load.js';
import { ConfigError } from '../../../config/errors.js';
import { reportsOnChangeOf } from '../../../drivers/index.js';
import { ruleSpecsOf } from '../../../rules/compile.js';

const site = (rule: string) => `version: 1
gateway: { id: gw-1, site: s1 }
connections:
  - { id: plc, type: modbus-tcp, host: 127.0.0.1, port: 502 }
  - { id: ua, type: opcua, endpoint: "opc.tcp://127.0.0.1:4840", security_mode: None }
equipment:
  - { id: B-1, category: boiler, connection: plc, poll_interval: 1s, points: [{ name: p, address: "hr:0", type: uint16 }] }
  - { id: L-1, category: elevator, connection: ua, poll_interval: 1s, points: [{ name: floor, node: "ns=2;s=Floor" }] }
  - { id: L-2, category: elevator, connection: ua, mode: poll, poll_interval: 1s, points: [{ name: floor, node: "ns=2;s=Floor" }] }
rules:
${rule}
`;

const problems = (text: string) => {
  try {
    parseSite(text);
    return [];
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    return err.problems.map((p) => `${p.path}: ${p.message}`);
  }
};

describe('stale rules and equipment that reports on change', () => {
  const specsOf = (rule: string) => {
    const config = parseSite(site(rule));
    const left: string[] = [];
    const specs = ruleSpecsOf(config, reportsOnChangeOf(config), (id, equipment) => left.push(`${id}: ${equipment.join(', ')}`));
    return { specs: specs.map((r) => `${r.equipment}/${r.id}`), left };
  };

  it('keeps a stale rule that names equipment read by OPC UA subscription: no reading for that long, as written', () => {
    expect(problems(site('  - { id: lost, equipment: L-1, stale: { intervals: 3 }, level: orange }'))).toEqual([]);
    expect(specsOf('  - { id: lost, equipment: [B-1, L-1, L-2], stale: { intervals: 3 }, level: orange }')).toEqual({
      specs: ['B-1/lost', 'L-1/lost', 'L-2/lost'],
      left: [],
    });
  });

  it('leaves equipment that reports on change out of a rule that selects by category, and says which', () => {
    // L-2 is read by polling (mode: poll): its driver says so, and it keeps the rule.
    expect(specsOf('  - { id: lost, equipment: { category: elevator }, stale: { intervals: 3 }, level: orange }')).toEqual({
      specs: ['L-2/lost'],
      left: ['lost: L-1'],
    });
  });
});
