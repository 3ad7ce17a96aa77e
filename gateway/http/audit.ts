// The audit journal lives in gateway/audit.ts, beside the CLI that also appends to it; this module
// keeps the path the HTTP API and older imports use.
export * from '../audit.js';
