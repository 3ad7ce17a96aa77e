// The risk and report settings that would break the running gateway are refused when the site file
// is read, at their path: a summary period of 0 (NaN periods), a report.keep under a day (today's
// journal deleted), and administrative durations so long that the dates computed from them are not
// dates (the start failed with "RangeError: Invalid time value").
import { describe, expect, it } from 'vitest';
import { parseSite } from '../../../../config/load.js';
import { testSiteYaml } from '../../../helpers/site.js';

const site = (extra: string[], equipment: string[] = []) =>
  parseSite(testSiteYaml({ extra }).replace('    connection: sim\n', ['    connection: sim', ...equipment, ''].join('\n')), { env: {} });

describe('risk settings are bounded', () => {
  it('refuses a summary period outside 1m..1d and a report.keep under 1d, naming the key', () => {
    for (const every of ['0s', '59s', '25h'])
      expect(() => site([`risk: { summary_every: ${every} }`])).toThrow(/risk\.summary_every: expected a duration from 1m to 1d/);
    expect(site(['risk: { summary_every: 1m }']).risk.summary_every).toBe(60_000);
    expect(site(['risk: { summary_every: 1d }']).risk.summary_every).toBe(86_400_000);
    for (const keep of ['0d', '23h']) expect(() => site([`report: { keep: ${keep} }`])).toThrow(/report\.keep: expected at least 1d/);
    expect(site(['report: { keep: 1d }']).report.keep).toBe(86_400_000);
  });

  it('refuses administrative durations over 100 years, and a maintenance date past 9999-12-31, naming the key', () => {
    expect(() => site([], ['    maintenance: { last: 2026-01-01, interval: 999999999d }'])).toThrow(
      /equipment\[0\]\.maintenance\.interval: expected a duration of at most 100 years/,
    );
    expect(() => site([], ['    inspection: { next: 2027-01-01, warn_before: 40000d }'])).toThrow(
      /equipment\[0\]\.inspection\.warn_before: expected a duration of at most 100 years/,
    );
    expect(() => site([], ['    certificate: { valid_until: 2027-01-01, warn_before: 36526d }'])).toThrow(
      /equipment\[0\]\.certificate\.warn_before: expected a duration of at most 100 years/,
    );
    expect(() => site([], ['    maintenance: { last: 9990-01-01, interval: 36500d }'])).toThrow(
      /equipment\[0\]\.maintenance\.interval: expected last \+ interval to be a date no later than 9999-12-31/,
    );
    expect(site([], ['    maintenance: { last: 2026-01-01, interval: 36525d }']).equipment[0]!.maintenance).toMatchObject({
      interval: 36525 * 86_400_000,
    });
  });
});
