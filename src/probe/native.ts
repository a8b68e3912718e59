// The native probe (dist/native/cb-probe) and the floor reference (dist/native/connect-loop), one module per job:
// spec.ts (binaries, errors, validation), client.ts (the load generator and its accounting), server.ts (the echo
// server), check.ts (one reachability attempt), watch.ts (time to enforcement). This file gathers them for callers.
export * from './spec.js';
export * from './client.js';
export * from './server.js';
export * from './check.js';
export * from './watch.js';
