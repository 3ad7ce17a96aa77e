// The HTTP API as a service: built at init, before anything reads or raises (it keeps the last
// readings and the alarm events from the first on), and listening at start, once everything else runs.
import type { HttpApi, HttpDeps } from '../http/server.js';
import type { Service } from './service.js';

export interface HttpService extends Service {
  /** Built by init(); undefined before. */
  readonly api: HttpApi | undefined;
}

export function httpService(deps: HttpDeps): HttpService {
  let api: HttpApi | undefined;
  return {
    id: 'http',
    name: 'HTTP API',
    get api() {
      return api;
    },
    async init() {
      const { createHttpApi } = await import('../http/server.js');
      api = createHttpApi(deps);
    },
    start: () => api!.start(),
    stop: async () => api?.stop(),
  };
}
