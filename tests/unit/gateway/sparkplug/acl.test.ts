// Only the gateway publishes its Sparkplug node's births, deaths and data; commands to it need a publish filter that names them.
import { describe, expect, it } from 'vitest';
import { GATEWAY_GRANT, mayPublish, sparkplugNodeFilters, type Grant } from '../../../../gateway/mqtt/acl.js';
import { testSite } from '../../../helpers/site.js';
import { ConfigError } from '../../../../config/errors.js';

const reserved = sparkplugNodeFilters('plant-3', 'gw-1');
const scada: Grant = { name: 'scada', gateway: false, subscribe: ['spBv1.0/#'], publish: ['spBv1.0/#'] };

describe('Sparkplug topics on the embedded broker', () => {
  it("refuses the node's N/D births, deaths and data to everyone but the gateway", () => {
    for (const t of ['NBIRTH/gw-1', 'NDEATH/gw-1', 'NDATA/gw-1', 'DBIRTH/gw-1/B-07', 'DDATA/gw-1/B-07', 'DDEATH/gw-1/B-07']) {
      expect(mayPublish(scada, `spBv1.0/plant-3/${t}`, 'gw/site', reserved), t).toBe(false);
      expect(mayPublish(GATEWAY_GRANT, `spBv1.0/plant-3/${t}`, 'gw/site', reserved), t).toBe(true);
      // Nor with more levels, which a host reading the first four or five would take for the node's.
      expect(mayPublish(scada, `spBv1.0/plant-3/${t}/x`, 'gw/site', reserved), `${t}/x`).toBe(false);
    }
  });

  it('lets a user whose filters name them send NCMD and DCMD, and publish other nodes and STATE', () => {
    expect(mayPublish(scada, 'spBv1.0/plant-3/NCMD/gw-1', 'gw/site', reserved)).toBe(true);
    expect(mayPublish(scada, 'spBv1.0/plant-3/DCMD/gw-1/B-07', 'gw/site', reserved)).toBe(true);
    expect(mayPublish(scada, 'spBv1.0/plant-3/NBIRTH/other-node', 'gw/site', reserved)).toBe(true);
    expect(mayPublish(scada, 'spBv1.0/STATE/host', 'gw/site', reserved)).toBe(true);
    const reader: Grant = { ...scada, publish: [] };
    expect(mayPublish(reader, 'spBv1.0/plant-3/NCMD/gw-1', 'gw/site', reserved)).toBe(false);
  });
});

describe('sparkplug: section', () => {
  it('takes defaults and refuses ids that are not one topic level, at their path', () => {
    const site = testSite({ extra: ['sparkplug: {}'] });
    expect(site.sparkplug).toMatchObject({ enabled: true, broker: 'gateway', max_stored: 1_000_000, rebirth_interval: 2000 });
    expect(() => testSite({ extra: ['sparkplug: { group_id: "a/b" }'] })).toThrow(/sparkplug\.group_id: expected an id/);
    expect(() => testSite({ extra: ['sparkplug: { username: x }'] })).toThrow(
      /sparkplug\.broker: username, password and ca go with a broker URL/,
    );
    expect(() => testSite({ extra: ['sparkplug: { broker: mqtt://h:1883, max_stored: 10 }'] })).toThrow(ConfigError);
  });
});
