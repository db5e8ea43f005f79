// The no-op handler of the thread-noop workload, run in a worker thread.
export default async function noop() {}
