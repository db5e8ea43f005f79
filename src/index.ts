/**
 * taskito: durable background jobs for Node.js, on an embedded SQLite file or PostgreSQL.
 * See README.md for a tour and docs/ARCHITECTURE.md for how a job travels.
 */
export { Queue } from './queue.js'
export type { QueueOptions, DeadLetter, Stats, WorkerStatus, TestResult, ListJobsOptions } from './queue.js'
export type { MetricsRegistry } from './metrics.js'
export { Task } from './task.js'
export type { EnqueueEntry, TaskSignatures, TaskRef, ArgsOf, ResultOf } from './task.js'
export { Job } from './job.js'
export type { JobInfo, JobStatus } from './job.js'
export { Worker } from './worker.js'
export type { WorkerOptions } from './worker.js'
export { currentJob } from './context.js'
export type { JobContext } from './context.js'
export { defaultSerializer } from './serializer.js'
export type { Serializer } from './serializer.js'
export type { TaskOptions, EnqueueOptions, RetryBackoff, ErrorClass } from './options.js'
export type { Hook, HookEvent, Logger } from './hooks.js'
export {
  TaskitoError,
  TaskTimeoutError,
  SoftTimeoutError,
  TaskCancelledError,
  MaxRetriesExceededError,
  SerializationError,
  CircuitBreakerOpenError,
  RateLimitExceededError,
  JobNotFoundError,
  QueueError,
} from './errors.js'
export type { ErrorRecord } from './errors.js'
