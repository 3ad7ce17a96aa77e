// Device profiles: every shipped profile passes its checks; an equipment entry that names one loads
// to the same points as the entry written by hand, may change or add points, and every mistake is
// reported at once, at its path, naming the profile's file where the mistake is in the profile.
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { BOILER_POINTS } from '../../helpers/site.js';
import { ConfigError } from '../../../config/errors.js';
import { parseSite } from '../../../config/load.js';
import { loadProfiles, parseProfile, ProfileError, profilesDir, type Profile } from '../../../config/profiles.js';
import { loadTemplates } from '../../../config/templates.js';
import { BOILER_REGISTER_MAP } from '../../../drivers/modbus/simulator.js';

const templates = loadTemplates();
const profiles = loadProfiles(templates);
const ROOT = join(profilesDir(), '..');

const site = (equipment: string) => `
version: 1
gateway: { id: gw-1, site: plant-1 }
connections:
  - { id: plc, type: modbus-tcp, host: 127.0.0.1 }
  - { id: rtu, type: modbus-rtu, path: /dev/ttyUSB0 }
  - { id: rtt, type: modbus-rtu-over-tcp, host: 127.0.0.1, port: 4001 }
  - { id: ua, type: opcua, endpoint: 'opc.tcp://127.0.0.1:4840/elevator' }
equipment:
${equipment}`;

const CONNECTION_OF: Record<string, string> = { 'modbus-tcp': 'plc', 'modbus-rtu': 'rtu', 'modbus-rtu-over-tcp': 'rtt', opcua: 'ua' };

const problems = (text: string) => {
  try {
    parseSite(text, { env: {} });
  } catch (err) {
    if (err instanceof ConfigError) return err.problems.map((p) => `${p.path}: ${p.message}`);
    throw err;
  }
  return [];
};

const profileProblems = (text: string, file = 'profiles/acme-x1.yaml') => {
  try {
    parseProfile(text, file, templates);
  } catch (err) {
    return (err as Error).message.split('\n');
  }
  return [];
};

describe('shipped profiles', () => {
  const files = readdirSync(profilesDir()).filter((f) => f.endsWith('.yaml'));

  it('has the simulated steam boiler and lift the demo reads, and a hot-water boiler controller', () => {
    expect(files.sort()).toEqual(['example-hwc200.yaml', 'gateway-sim-steam-boiler.yaml', 'gateway-sim-traction-lift.yaml']);
  });

  it.each(files)('%s passes its checks against its template and the drivers of its connection types', (f) => {
    const p = profiles.get(f.replace(/\.yaml$/, ''));
    expect(p instanceof Error ? p.message : undefined).toBeUndefined();
    const profile = p as Profile;
    expect(templates.has(profile.template)).toBe(true);
    // A site that names it on each of its connection types loads.
    // A site that names it loads, on each of its connection types.
    const category = templates.get(profile.template)!.category;
    for (const type of profile.connection_types) {
      const entry = `  - { id: E-1, category: ${category}, connection: ${CONNECTION_OF[type]}, profile: ${profile.profile} }`;
      expect(problems(site(entry)), type).toEqual([]);
    }
    // Every profile says where its map comes from, in a comment at its top.
    expect(readFileSync(join(ROOT, 'profiles', f), 'utf8')).toMatch(/^# /);
  });

  it('the simulated boiler profile is the register map the Modbus simulator serves', () => {
    const profile = profiles.get('gateway-sim-steam-boiler') as Profile;
    for (const point of profile.points) {
      const served: Record<string, unknown> | undefined = BOILER_REGISTER_MAP.find((r) => r.name === point.name);
      expect(served, point.name).toBeDefined();
      // The profile leaves units to the template.
      expect({ ...point, unit: served!.unit }).toEqual({ unit: undefined, ...served });
    }
  });
});

// The demo's boiler and lift as they were written before profiles existed.
const HAND_WRITTEN_BOILER = `  - id: B-07
    code: '10003101012019000117'
    template: boiler-steam
    connection: plc
    points:
      - { name: steam_pressure, address: 'hr:100', type: float32, byte_order: ABCD, unit: MPa }
      - { name: steam_temperature, address: 'hr:102', type: float32, byte_order: CDAB, unit: °C }
      - { name: drum_level, address: 'hr:110', type: int16, unit: mm }
      - { name: feedwater_flow, address: 'hr:111', type: uint16, scale: 0.01, unit: t/h }
      - { name: flue_o2, address: 'hr:112', type: int16, scale: 0.01, unit: '%' }
      - { name: flame, address: 'di:0', type: bool }
      - { name: burner_on, address: 'hr:130.0', type: bool }
      - { name: interlock_tripped, address: 'hr:130.2', type: bool }
`;
const LIFT_POINTS = [
  'Floor',
  'Direction',
  'Running',
  'DoorOpen',
  'InDoorZone',
  'PassengerPresent',
  'Load',
  'Speed',
  'SafetyCircuit',
  'DoorLockCircuit',
  'MainPower',
  'ServiceMode',
  'FaultCode',
  'RunCount',
];
const snake = (s: string) => s.replace(/(?<!^)([A-Z])/g, '_$1').toLowerCase();
const HAND_WRITTEN_LIFT = `  - id: L-3
    code: '31103101012019000042'
    template: elevator-traction
    connection: ua
    points:
${LIFT_POINTS.map((n) => `      - { name: ${snake(n)}, node: 'ns=1;s=Lift3.${n}'${n === 'Load' ? ', unit: kg' : n === 'Speed' ? ', unit: m/s' : ''} }`).join('\n')}
`;

describe('an equipment entry with a profile', () => {
  it('loads to the same points, template and rules as the entry written by hand (Modbus and OPC UA)', () => {
    const byHand = parseSite(site(HAND_WRITTEN_BOILER + HAND_WRITTEN_LIFT), { env: {} }).equipment;
    const withProfiles = parseSite(
      site(`  - { id: B-07, code: '10003101012019000117', connection: plc, profile: gateway-sim-steam-boiler }
  - { id: L-3, code: '31103101012019000042', connection: ua, profile: gateway-sim-traction-lift }
`),
      { env: {} },
    ).equipment;
    expect(withProfiles.map((e) => e.points)).toEqual(byHand.map((e) => e.points));
    expect(withProfiles.map((e) => e.template)).toEqual(['boiler-steam', 'elevator-traction']);
    expect(withProfiles.map((e) => e.template_rules)).toEqual(byHand.map((e) => e.template_rules));
    expect(withProfiles.map((e) => e.limits)).toEqual(byHand.map((e) => e.limits));
  });

  it('the demo reads its boiler and lift through profiles', () => {
    const demo = readFileSync(join(ROOT, 'config', 'demo.yaml'), 'utf8');
    const equipment = parseSite(demo, { env: {} }).equipment;
    expect(equipment.find((e) => e.id === 'B-07')).toMatchObject({ profile: 'gateway-sim-steam-boiler', template: 'boiler-steam' });
    expect(equipment.find((e) => e.id === 'L-3')).toMatchObject({ profile: 'gateway-sim-traction-lift', template: 'elevator-traction' });
    const byHand = parseSite(site(HAND_WRITTEN_BOILER + HAND_WRITTEN_LIFT), { env: {} }).equipment;
    expect(['B-07', 'L-3'].map((id) => equipment.find((e) => e.id === id)!.points)).toEqual(byHand.map((e) => e.points));
  });

  it('takes the keys an entry gives for a point of the profile, and adds the points it has besides', () => {
    const [e] = parseSite(
      site(`  - id: B-1
    code: '10003101012019000117'
    connection: plc
    profile: gateway-sim-steam-boiler
    points:
      - { name: drum_level, address: 'hr:200', scale: 0.1 }
      - { name: run_seconds, address: 'hr:114', type: uint32, byte_order: BADC, unit: s }
`),
      { env: {} },
    ).equipment;
    const points = e!.points as unknown as Array<Record<string, unknown>>;
    expect(points.map((p) => p.name)).toEqual([...BOILER_POINTS, 'run_seconds']);
    // The address and scale are the entry's, the type the profile's, the unit the template's.
    expect(points[2]).toMatchObject({ address: 'hr:200', type: 'int16', scale: 0.1, unit: 'mm' });
    expect(points[8]).toMatchObject({ address: 'hr:114', type: 'uint32', byte_order: 'BADC', unit: 's' });
  });

  it('reports every mistake at once, at its path, naming the profile and its file', () => {
    expect(
      problems(
        site(`  - { id: A-1, category: boiler, connection: plc, profile: acme-nothing }
  - { id: A-2, code: '31103101012019000042', connection: ua, profile: gateway-sim-steam-boiler }
  - { id: A-3, category: boiler, connection: plc, template: boiler-hot-water, profile: gateway-sim-steam-boiler }
  - id: A-4
    category: boiler
    connection: rtu
    profile: example-hwc200
    points:
      - { name: flame, address: 'ir:10.2', type: int17 }
      - { name: outlet_temperature, address: 'co:3' }
`),
      ),
    ).toEqual([
      'equipment[0].profile: no profile "acme-nothing"; profiles are example-hwc200, gateway-sim-steam-boiler, gateway-sim-traction-lift',
      'equipment[1].profile: profile gateway-sim-steam-boiler is for modbus-tcp connections (profiles/gateway-sim-steam-boiler.yaml: connection_types); connection ua is opcua',
      'equipment[1].profile: template boiler-steam is for boiler equipment, and this is elevator',
      'equipment[2].template: profile gateway-sim-steam-boiler maps template boiler-steam (profiles/gateway-sim-steam-boiler.yaml: template), not boiler-hot-water',
      // The entry's own mistakes at the entry's point; a key of the profile's that no longer fits, in the profile.
      'equipment[3].profile: profiles/example-hwc200.yaml: point outlet_temperature, type: a coil is a single bit: type must be bool, not int16',
      'equipment[3].points[0].type: expected one of bool, int16, uint16, int32, uint32, int64, uint64, float32, float64, string, got "int17"',
      'equipment[3].points[0].type: a bit of a register is a bool: type must be bool',
    ]);
  });
});

describe('a profile file', () => {
  const head = 'profile: acme-x1\nvendor: Acme\nmodel: X1\ntemplate: boiler-steam\n';

  it('is checked as its driver checks points, on each of its connection types', () => {
    expect(profileProblems(`${head}connection_types: [modbus-tcp, opcua]\npoints:\n  - { name: drum_level, address: 'hr:110' }\n`)).toEqual(
      [
        'profiles/acme-x1.yaml: points[0].type: required for a register point (bool, int16, uint16, int32, uint32, int64, uint64, float32, float64, string) (as a modbus-tcp point)',
        'profiles/acme-x1.yaml: points[0].node: required (as an opcua point)',
        'profiles/acme-x1.yaml: points[0].address: not a key of an opcua point',
      ],
    );
  });

  it("maps only its template's points, in the template's units, under its file's name", () => {
    expect(
      profileProblems(
        `profile: acme-x2\nvendor: Acme\nmodel: X1\ntemplate: boiler-steam\nconnection_types: [modbus-tcp, modbus-udp]\npoints:\n  - { name: drum_level, address: 'hr:110', type: int16, unit: cm }\n  - { name: speed, address: 'hr:1', type: int16 }\n  - { name: speed, address: 'hr:2', type: int16 }\nfirmware: 2\n`,
      ),
    ).toEqual(['profiles/acme-x1.yaml: firmware: unknown key']);
    expect(
      profileProblems(
        `profile: acme-x2\nvendor: Acme\nmodel: X1\ntemplate: boiler-steam\nconnection_types: [modbus-tcp, modbus-udp]\npoints:\n  - { name: drum_level, address: 'hr:110', type: int16, unit: cm }\n  - { name: speed, address: 'hr:1', type: int16 }\n  - { name: speed, address: 'hr:2', type: int16 }\n`,
      ),
    ).toEqual([
      'profiles/acme-x1.yaml: profile: "acme-x2" must match the file name (acme-x1)',
      "profiles/acme-x1.yaml: points[0].unit: template boiler-steam has drum_level in mm: convert with the driver's scaling instead",
      expect.stringMatching(
        /^profiles\/acme-x1\.yaml: points\[1\]\.name: template boiler-steam has no point speed; its points are steam_pressure, /,
      ),
      'profiles/acme-x1.yaml: points[2].name: point speed is listed twice',
      expect.stringMatching(/^profiles\/acme-x1\.yaml: points\[2\]\.name: template boiler-steam has no point speed/),
      'profiles/acme-x1.yaml: connection_types[1]: no connection type "modbus-udp"',
    ]);
  });

  it('a broken file does not hide the others: it is read as its problems, which a site that uses it reports', () => {
    const dir = mkdtempSync(join(tmpdir(), 'profiles-'));
    try {
      writeFileSync(join(dir, 'acme-x1.yaml'), 'profile: [1\n');
      writeFileSync(
        join(dir, 'acme-x2.yaml'),
        `profile: acme-x2\nvendor: Acme\nmodel: X2\ntemplate: crane\nconnection_types: [opcua]\npoints: [{ name: load, node: 'ns=2;s=Hoist.Load' }]\n`,
      );
      const read = loadProfiles(templates, dir);
      expect(read.get('acme-x1')).toBeInstanceOf(ProfileError);
      expect((read.get('acme-x1') as ProfileError).problems[0]).toMatch(/^profiles\/acme-x1\.yaml: \(yaml\): /);
      expect(read.get('acme-x2')).toMatchObject({ template: 'crane', file: 'profiles/acme-x2.yaml' });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('docs/profiles.md', () => {
  const text = readFileSync(join(ROOT, 'docs', 'profiles.md'), 'utf8');
  const blocks = [...text.matchAll(/```(yaml|text)\n([\s\S]*?)```/g)].map((m) => m[2]!);

  it('its samples load: the entry, the entry with overrides, the profile file', () => {
    const [entry, overrides, , file] = blocks;
    const equipment = entry!.replace(/^equipment:\n/, '').replace(/boiler-plc/, 'plc');
    expect(problems(site(equipment))).toEqual([]);
    const withOverrides = equipment.replace(/ {4}profile: .*\n/, overrides!);
    const points = parseSite(site(withOverrides), { env: {} }).equipment[0]!.points;
    expect(points.map((p) => p.name)).toContain('run_seconds');
    expect(() => parseProfile(file!, 'profiles/example-hwc200.yaml', templates)).not.toThrow();
  });

  it('its error sample is what the gateway prints for those mistakes', () => {
    const printed = blocks[2]!.trim().split('\n');
    const mistakes = problems(
      site(`  - { id: A-1, category: boiler, connection: plc, profile: acme-sb10 }
  - { id: A-2, category: boiler, connection: lift-ctl, profile: gateway-sim-steam-boiler }
  - { id: A-3, category: boiler, connection: plc, template: boiler-hot-water, profile: gateway-sim-steam-boiler }
  - id: A-4
    category: boiler
    connection: rtu
    profile: example-hwc200
    points:
      - { name: flame, address: 'ir:10.2', type: int17 }
      - { name: outlet_temperature, address: 'co:3' }
`).replace('id: ua,', 'id: lift-ctl,'),
    );
    // In the order the gateway prints them (by line), with the last one left out of the sample.
    expect(mistakes.slice(0, printed.length)).toEqual(printed);
  });
});
