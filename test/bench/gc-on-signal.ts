// Preloaded into the daemon by the memory benchmark (node --expose-gc --import): SIGUSR2 runs a full garbage
// collection, so that a sample measures live memory rather than garbage V8 has not collected yet. An idle daemon
// allocates too little to trigger collection by itself.
process.on('SIGUSR2', () => globalThis.gc?.());
