import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    projects: [
      {
        test: {
          name: 'unit',
          include: ['tests/unit/**/*.test.ts'],
        },
      },
      {
        test: {
          name: 'integration',
          include: ['tests/integration/**/*.test.ts', 'tests/e2e/**/*.test.ts'],
          // Mosquitto, InfluxDB 1.x and VictoriaMetrics on free loopback ports, for the whole run.
          globalSetup: ['tests/setup/servers.ts'],
          testTimeout: 30_000,
          hookTimeout: 60_000,
          // One file at a time: these tests start real servers and measure timings (polls at their
          // rate, Ctrl-C within 2 s) that a 2-core machine running them side by side would blur.
          fileParallelism: false,
        },
      },
    ],
  },
});
