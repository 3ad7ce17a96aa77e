// Users of the embedded MQTT broker as the site file holds them: a name, a role and the SHA-256 hash
// of a generated password (the scheme of the API tokens). Node built-ins only: `gateway mqtt user
// new` loads this module without the broker, zod or aedes.
import { createHash, randomBytes } from 'node:crypto';

/** `reader`: the site's telemetry, status and alarms; `lab`: its lab results; `writer`: what `gateway influx-writer` reads; `custom`: exactly the user's own filters. */
export const MQTT_ROLES = ['reader', 'lab', 'writer', 'custom'] as const;
export type MqttRole = (typeof MQTT_ROLES)[number];

/** What a hash in mqtt.users looks like. */
export const PASSWORD_HASH = /^sha256:[0-9a-f]{64}$/;

/** A user name: what a client sends in CONNECT and what a client certificate's CN names. */
export const MQTT_USER_NAME = /^[A-Za-z0-9][A-Za-z0-9_.@-]{0,63}$/;

export function hashPassword(password: string | Buffer): string {
  return `sha256:${createHash('sha256').update(password).digest('hex')}`;
}

/**
 * A new user: a random password (shown once, never stored) and the lines to add under mqtt.users.
 * 32 random bytes, as for API tokens: a hash of a password that strong cannot be reversed, so the
 * site file may be read by more people than the broker's clients.
 */
export function newMqttUser(name: string, role: string): { password: string; hash: string; yaml: string } {
  if (!MQTT_USER_NAME.test(name))
    throw new Error(
      `User name "${name}" is not valid: expected at most 64 letters, digits, "-", "_", "." or "@", starting with a letter or digit`,
    );
  if (!(MQTT_ROLES as readonly string[]).includes(role)) throw new Error(`Role "${role}" is not one of ${MQTT_ROLES.join(', ')}`);
  const password = randomBytes(32).toString('base64url');
  const hash = hashPassword(password);
  const lines = [`- name: ${name}`, `  role: ${role}`, `  hash: "${hash}"`];
  if (role === 'custom')
    lines.push(
      '  subscribe: []   # topic filters this user may subscribe to',
      '  publish: []     # topic filters it may publish to (never under <topic_prefix>/<site>/)',
    );
  return { password, hash, yaml: `${lines.join('\n')}\n` };
}
