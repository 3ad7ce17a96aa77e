// A network namespace of its own, for the tests that must listen beyond loopback (0.0.0.0, as a site
// in a container does) or be reached from an address that is not loopback. Inside it, 0.0.0.0 is the
// namespace's own loopback device and nothing else: nothing is bound on this machine's interfaces,
// and no packet leaves it. Needs root, `unshare` and `ip` (util-linux and iproute2).
import { spawnSync } from 'node:child_process';

/** An address that is not loopback, put on the namespace's loopback device when asked for. */
export const LAN_ADDRESS = '10.9.9.9';

/** Whether this machine lets a test make a network namespace. */
export const canIsolateNetwork = spawnSync('unshare', ['--net', 'ip', 'link', 'set', 'lo', 'up']).status === 0;

/**
 * The command and arguments that run `command args` in a new network namespace whose loopback device
 * is up, with LAN_ADDRESS on it as well when `withLanAddress`.
 */
export function inOwnNetwork(command: string, args: string[], withLanAddress = false): [string, string[]] {
  const setup = ['ip link set lo up', ...(withLanAddress ? [`ip addr add ${LAN_ADDRESS}/32 dev lo`] : [])].join(' && ');
  return ['unshare', ['--net', 'sh', '-c', `${setup} && exec "$@"`, 'sh', command, ...args]];
}
