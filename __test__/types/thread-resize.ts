// A thread task's module (isolate: 'thread'): its default export is the handler, and its type is
// what __test__/types/threads.ts gives the Task.
import { currentJob } from 'taskito'

export default async function resize(path: string, width: number): Promise<{ path: string; bytes: number }> {
  currentJob().checkCancelled()
  return { path, bytes: width * 4 }
}
