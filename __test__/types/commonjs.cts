// The CommonJS entry's types: the same names, the same checks.
import { Queue, TaskitoError, type Job } from 'taskito'

const queue = new Queue({ dbPath: 'types.db' })
const add = queue.task('add', async (a: number, b: number) => a + b)
async function main(): Promise<Job<number>[]> {
  // @ts-expect-error a string where add takes a number
  await queue.enqueueMany([{ task: add, args: ['1', 2] }])
  try {
    return await queue.enqueueMany([{ task: add, args: [1, 2] }])
  } catch (err) {
    if (err instanceof TaskitoError) console.error(err.code)
    throw err
  }
}
export = main
