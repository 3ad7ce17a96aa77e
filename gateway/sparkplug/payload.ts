// Sparkplug B payloads, encoded with protobufjs from the message definitions below: the part of the
// Sparkplug 3.0 payload (org.eclipse.tahu.protobuf.Payload) the gateway writes and reads, with the
// specification's field numbers. A decoder of the whole Tahu definition reads them (the tests decode
// every message with Eclipse Tahu's sparkplug-payload); fields left out here are skipped on reading.
import protobuf from 'protobufjs';

const SPARKPLUG_B_PROTO = `
syntax = "proto2";
package org.eclipse.tahu.protobuf;
message Payload {
  message PropertyValue {
    optional uint32 type = 1;
    optional bool is_null = 2;
    oneof value {
      uint32 int_value = 3;
      uint64 long_value = 4;
      float float_value = 5;
      double double_value = 6;
      bool boolean_value = 7;
      string string_value = 8;
    }
  }
  message PropertySet {
    repeated string keys = 1;
    repeated PropertyValue values = 2;
  }
  message Metric {
    optional string name = 1;
    optional uint64 alias = 2;
    optional uint64 timestamp = 3;
    optional uint32 datatype = 4;
    optional bool is_historical = 5;
    optional bool is_transient = 6;
    optional bool is_null = 7;
    optional PropertySet properties = 9;
    oneof value {
      uint32 int_value = 10;
      uint64 long_value = 11;
      float float_value = 12;
      double double_value = 13;
      bool boolean_value = 14;
      string string_value = 15;
      bytes bytes_value = 16;
    }
  }
  optional uint64 timestamp = 1;
  repeated Metric metrics = 2;
  optional uint64 seq = 3;
  optional string uuid = 4;
  optional bytes body = 5;
}
`;

/** Sparkplug data types (Sparkplug 3.0, 6.4.16): the ones the gateway uses. */
export const DataType = {
  Int32: 3,
  Int64: 4,
  UInt64: 8,
  Double: 10,
  Boolean: 11,
  String: 12,
} as const;
export type DataTypeCode = (typeof DataType)[keyof typeof DataType];

/**
 * The `Quality` property (Int32): Sparkplug 3.0 (6.4.9.1) allows 0 (bad), 192 (good) and 500 (stale)
 * only. An uncertain reading keeps its value and goes as 500, so no host takes it for good (OPC DA's
 * 64 is no Sparkplug code, and an Ignition 8 host reads it as a good quality).
 */
export const QUALITY_CODE = { good: 192, uncertain: 500, bad: 0 } as const;

export type PropertyValue = { type: DataTypeCode; value: number | boolean | string | null };

export interface Metric {
  name?: string;
  alias?: number;
  timestamp?: number;
  datatype?: DataTypeCode;
  value: number | boolean | string | null;
  isHistorical?: boolean;
  properties?: Record<string, PropertyValue>;
}

export interface Payload {
  timestamp: number;
  seq?: number;
  metrics: Metric[];
}

let payloadType: protobuf.Type | undefined;
function type(): protobuf.Type {
  return (payloadType ??= protobuf.parse(SPARKPLUG_B_PROTO, { keepCase: true }).root.lookupType('org.eclipse.tahu.protobuf.Payload'));
}

/** The field of the `value` oneof a data type travels in. */
function valueField(datatype: DataTypeCode | undefined, value: number | boolean | string): Record<string, unknown> {
  switch (datatype) {
    case DataType.Int32:
      // Signed 32-bit values travel as their two's complement in an unsigned field.
      return { int_value: (value as number) >>> 0 };
    case DataType.Int64:
    case DataType.UInt64:
      return { long_value: value as number };
    case DataType.Boolean:
      return { boolean_value: value as boolean };
    case DataType.String:
      return { string_value: value as string };
    default:
      return { double_value: value as number };
  }
}

function propertySet(props: Record<string, PropertyValue>): Record<string, unknown> {
  const keys = Object.keys(props);
  return {
    keys,
    values: keys.map((k) => {
      const p = props[k]!;
      if (p.value === null) return { type: p.type, is_null: true };
      const v = valueField(p.type, p.value);
      // PropertyValue has its own field numbers; the names match Metric's.
      return { type: p.type, ...v };
    }),
  };
}

export function encodePayload(payload: Payload): Uint8Array {
  const message = {
    timestamp: payload.timestamp,
    ...(payload.seq !== undefined ? { seq: payload.seq } : {}),
    metrics: payload.metrics.map((m) => ({
      ...(m.name !== undefined ? { name: m.name } : {}),
      ...(m.alias !== undefined ? { alias: m.alias } : {}),
      ...(m.timestamp !== undefined ? { timestamp: m.timestamp } : {}),
      ...(m.datatype !== undefined ? { datatype: m.datatype } : {}),
      ...(m.isHistorical ? { is_historical: true } : {}),
      ...(m.value === null ? { is_null: true } : valueField(m.datatype, m.value)),
      ...(m.properties ? { properties: propertySet(m.properties) } : {}),
    })),
  };
  return type().encode(message).finish();
}

/** A decoded metric of an incoming command: what the node reads of it. */
export interface CommandMetric {
  name?: string;
  alias?: number;
  value: number | boolean | string | null;
}

/** Decodes an incoming payload (an NCMD); throws on bytes that are not a Sparkplug B payload. */
export function decodeCommand(bytes: Uint8Array): { timestamp?: number; metrics: CommandMetric[] } {
  const t = type();
  const o = t.toObject(t.decode(bytes), { longs: Number, oneofs: true }) as {
    timestamp?: number;
    metrics?: Array<Record<string, unknown> & { name?: string; alias?: number; value?: string; is_null?: boolean }>;
  };
  return {
    ...(o.timestamp !== undefined ? { timestamp: o.timestamp } : {}),
    metrics: (o.metrics ?? []).map((m) => ({
      ...(m.name !== undefined ? { name: m.name } : {}),
      ...(m.alias !== undefined ? { alias: m.alias } : {}),
      value: m.is_null || m.value === undefined ? null : (m[m.value] as number | boolean | string),
    })),
  };
}

/** The data type of a value, for a metric first seen with it. */
export function dataTypeOf(value: number | boolean | string): DataTypeCode {
  if (typeof value === 'boolean') return DataType.Boolean;
  if (typeof value === 'string') return DataType.String;
  return DataType.Double;
}

/** Whether a value fits a metric's data type (a metric that changes type needs a new birth). */
export function fits(datatype: DataTypeCode, value: number | boolean | string | null): boolean {
  if (value === null) return true;
  if (datatype === DataType.Boolean) return typeof value === 'boolean';
  if (datatype === DataType.String) return typeof value === 'string';
  return typeof value === 'number';
}
