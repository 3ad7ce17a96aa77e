/**
 * Runs `tick` at origin + n × interval, from n = `first` on. A tick that runs late runs once and the
 * next is back on the grid: polls do not drift, and missed ones are not queued up.
 */
export function onGrid(interval: number, tick: () => void, first = 0): { stop(): void } {
  const origin = Date.now();
  let timer: NodeJS.Timeout | undefined;
  let stopped = false;
  const schedule = (n: number) => {
    timer = setTimeout(
      () => {
        if (stopped) return;
        tick();
        if (!stopped) schedule(Math.max(n + 1, Math.floor((Date.now() - origin) / interval) + 1));
      },
      Math.max(0, origin + n * interval - Date.now()),
    );
  };
  schedule(first);
  return {
    stop() {
      stopped = true;
      clearTimeout(timer);
    },
  };
}
