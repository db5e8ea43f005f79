/**
 * `taskito schedules`: the stored schedules of a namespace (read-only), as queue.schedules() gives
 * them; the table shows times as ISO dates and `-` for a schedule that never fired.
 */
import type { Queue } from '../queue.js'
import type { ScheduleInfo } from '../schedules.js'

export const SCHEDULE_COLUMNS = ['name', 'taskName', 'cron', 'timezone', 'nextRunAt', 'lastRunAt', 'paused', 'queue']

export async function listSchedules(queue: Queue): Promise<{ list: ScheduleInfo[]; rows: Record<string, unknown>[] }> {
  const list = await queue.schedules()
  const rows = list.map((s) => ({ ...s, nextRunAt: s.nextRunAt.getTime(), lastRunAt: s.lastRunAt?.getTime() ?? null }))
  return { list, rows }
}
