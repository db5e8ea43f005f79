/**
 * taskito: durable background jobs for Node.js, on an embedded SQLite file or PostgreSQL.
 * See README.md for a tour and docs/ARCHITECTURE.md for how a job travels.
 */
export { Queue } from './queue.js'
export type { QueueOptions, DeadLetter, Stats, QueueInfo, WorkerStatus, TestResult, ListJobsOptions, CircuitBreakerInfo } from './queue.js'
export type { CircuitChange, CircuitListener } from './breakers.js'
export type { MetricsRegistry } from './metrics.js'
export { Task } from './task.js'
export type { EnqueueEntry, TaskSignatures, TaskRef, ArgsOf, ResultOf } from './task.js'
export { chain, group, chord, Signature, Chain, Group, Chord } from './workflow.js'
export type { Canvas, Chained, OutputOf } from './workflow.js'
export { Job } from './job.js'
export type { JobInfo, JobStatus } from './job.js'
export { Worker } from './worker.js'
export type { WorkerOptions } from './worker.js'
export type { PeriodicOptions, ScheduleInfo } from './schedules.js'
export { currentJob } from './context.js'
export type { JobContext } from './context.js'
export { defaultSerializer } from './serializer.js'
export type { Serializer } from './serializer.js'
export type { TaskOptions, EnqueueOptions, RetryBackoff, ErrorClass, CircuitBreakerOptions, DependencyLike } from './options.js'
export type { ThreadTaskOptions } from './thread/options.js'
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
export type { ErrorRecord, RateLimitExceededOptions } from './errors.js'
