/**
 * `taskito dashboard`: serves the web dashboard (taskito/dashboard) over a database until SIGINT
 * or SIGTERM. The dashboard's module is loaded only here, so other commands never load it.
 */
import type { Queue } from '../queue.js'

export interface DashboardFlags {
  host?: string
  port?: number
  token?: string
}

export async function runDashboard(queue: Queue, flags: DashboardFlags, say: (line: string) => void): Promise<void> {
  const { serveDashboard } = await import('../dashboard/index.js')
  // A token on the command line shows in `ps`: TASKITO_DASHBOARD_TOKEN keeps it out.
  const token = flags.token ?? process.env.TASKITO_DASHBOARD_TOKEN
  await queue.open()
  const server = await serveDashboard(queue, {
    ...(flags.host !== undefined ? { host: flags.host } : {}),
    ...(flags.port !== undefined ? { port: flags.port } : {}),
    ...(token !== undefined && token !== '' ? { token } : {}),
  })
  say(`taskito: dashboard of ${queue.location} at ${server.url}${token ? ' (token required)' : ''}; Ctrl-C stops it`)
  await new Promise<void>((resolve) => {
    const stop = () => resolve()
    process.once('SIGINT', stop)
    process.once('SIGTERM', stop)
  })
  await server.close()
}
