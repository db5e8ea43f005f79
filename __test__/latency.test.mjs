// Enqueues from many event-loop callbacks while another enqueue is out (a web server's requests):
// they go to the core together (src/queue.ts #coalesced), and each caller still gets its own jobs,
// all or nothing for itself.
import http from 'node:http'
import { JobNotFoundError } from 'taskito'
import { eachCore, makeQueue } from './helpers.mjs'

eachCore('enqueues from many I/O callbacks while one is out: each caller gets its own job, a refused one fails alone', async (t, core) => {
  const queue = makeQueue(t, core)
  const echo = queue.task('echo', async (n) => n)
  // Each request's handler runs in its own I/O callback, as in a web server under load.
  const server = http.createServer((req, res) => {
    const n = Number(req.url.slice(1))
    // Request 7 names a dependency that does not exist: the core refuses it, and only it.
    const job = n === 7 ? echo.apply([n], { dependsOn: '999999' }) : echo.delay(n)
    job.then(
      (j) => res.end(j.id),
      (err) => {
        res.statusCode = err instanceof JobNotFoundError ? 404 : 500
        res.end(String(err.message))
      },
    )
  })
  await new Promise((r) => server.listen(0, '127.0.0.1', r))
  t.teardown(() => server.close())
  const { port } = server.address()
  const agent = new http.Agent({ keepAlive: true, maxSockets: 20 })
  t.teardown(() => agent.destroy())
  const get = (n) =>
    new Promise((resolve, reject) => {
      http
        .get({ host: '127.0.0.1', port, path: `/${n}`, agent }, (res) => {
          let body = ''
          res.on('data', (c) => (body += c))
          res.on('end', () => resolve({ status: res.statusCode, body }))
        })
        .on('error', reject)
    })
  // One enqueue already out when the requests arrive.
  const first = echo.delay(-1)
  const answers = await Promise.all(Array.from({ length: 40 }, (_, n) => get(n)))
  await first

  t.is(answers[7].status, 404, answers[7].body)
  const ok = answers.filter((_, n) => n !== 7)
  t.true(ok.every((a) => a.status === 200), JSON.stringify(ok.filter((a) => a.status !== 200)))
  t.is(new Set(ok.map((a) => a.body)).size, 39, 'one job per request')

  // Each id is its own request's job: run them and read the results back.
  const worker = queue.worker({ concurrency: 8 })
  await worker.start()
  t.teardown(() => worker.close())
  for (const [n, a] of answers.entries()) {
    if (n === 7) continue
    t.is(await (await queue.getJob(a.body)).result({ timeout: 15_000 }), n)
  }
  t.is((await queue.stats()).pending, 0)
})
