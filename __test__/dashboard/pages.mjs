/* global document -- functions passed to page.evaluate run in the browser */
// Page objects for the dashboard's browser test: one per page, each knowing its selectors
// (the data-testid attributes of assets/dashboard/app.js), so a new check (pause and resume once
// queues exist, say) is a few lines in the test.
import { mkdirSync } from 'node:fs'
import { join } from 'node:path'

export const SHOTS = join(import.meta.dirname, '..', '..', 'artifacts', 'dashboard')

/** The dashboard in one browser tab. */
export class Dashboard {
  constructor(page, base) {
    this.page = page
    this.base = base
    mkdirSync(SHOTS, { recursive: true })
  }

  /** Opens a page by its route (`overview`, `jobs?status=dead`, `job/12`) and waits for its data. */
  async open(route, ready) {
    await this.page.goto(`${this.base}#/${route}`)
    await this.shown(route)
    await this.page.waitForSelector(ready)
    return this
  }

  /** Waits until the page of `route` shows its first data: the app marks `main` busy from the
   * route's change until then, so the page before it, or this one built but not yet filled (an
   * empty list), is never read as the answer. */
  async shown(route) {
    await this.page.waitForFunction((r) => {
      const main = document.getElementById('main')
      return main.dataset.route === r && !main.hasAttribute('aria-busy')
    }, route)
  }

  async screenshot(name) {
    await this.page.screenshot({ path: join(SHOTS, `${name}.png`), fullPage: true })
  }

  text(selector) {
    return this.page.locator(selector).first().innerText()
  }

  /** Runs `action` (a click) and returns the toast it shows: a toast of an earlier action may still
   * be up (its timer runs late on a loaded machine), so this waits for a shown toast whose text is
   * not the one shown before the action. */
  async toast(action) {
    const before = await this.page.evaluate(() => {
      const el = document.querySelector('#toast')
      return el && !el.hidden ? el.innerText : null
    })
    await action()
    await this.page.waitForFunction((was) => {
      const el = document.querySelector('#toast')
      return el !== null && !el.hidden && el.innerText !== was
    }, before)
    return this.page.locator('#toast').innerText()
  }

  overview() {
    return new Overview(this)
  }
  jobs() {
    return new Jobs(this)
  }
  job(id) {
    return new JobPage(this, id)
  }
  deadLetters() {
    return new DeadLetters(this)
  }
  queues() {
    return new Queues(this)
  }
  list(route, testid) {
    return new ListPage(this, route, testid)
  }
}

export class Overview {
  constructor(d) {
    this.d = d
  }
  async open() {
    await this.d.open('overview', '[data-testid=counts] [data-count=dead]')
    await this.d.page.waitForSelector('[data-testid=chart]')
    return this
  }
  /** The count shown for a status. */
  async count(status) {
    return Number(await this.d.text(`[data-count=${status}] .n`))
  }
  async bars() {
    return this.d.page.locator('[data-testid=chart] rect.bar').count()
  }
}

export class Jobs {
  constructor(d) {
    this.d = d
  }
  async open(query = '') {
    await this.d.open(`jobs${query ? `?${query}` : ''}`, '[data-testid=jobs] table, [data-testid=jobs] [data-testid=empty]')
    return this
  }
  /** Ids of the listed jobs, in the order shown. */
  ids() {
    return this.d.page.locator('[data-testid=jobs] [data-job-id]').evaluateAll((as) => as.map((a) => a.dataset.jobId))
  }
  /** Filters by status through the form, as a user would; waits for the list to show it. */
  async filterStatus(status) {
    await this.d.page.selectOption('[data-testid=job-filters] select[name=status]', status)
    await this.d.page.click('[data-testid=job-filters] button[type=submit]')
    await this.d.shown(`jobs?status=${status}`)
  }
}

export class JobPage {
  constructor(d, id) {
    this.d = d
    this.id = id
  }
  async open() {
    await this.d.open(`job/${this.id}`, '[data-testid=job-status]')
    return this
  }
  status() {
    return this.d.text('[data-testid=job-status]')
  }
  args() {
    return this.d.text('[data-testid=args]')
  }
  errors() {
    return this.d.text('[data-testid=errors]')
  }
  async cancel() {
    await this.d.page.click('[data-testid=cancel]')
    await this.d.page.waitForFunction(() => document.querySelector('[data-testid=job-status]')?.innerText.trim() === 'cancelled')
  }
}

export class DeadLetters {
  constructor(d) {
    this.d = d
  }
  async open() {
    await this.d.open('dead-letters', '[data-testid=dead-letters] table, [data-testid=dead-letters] [data-testid=empty]')
    return this
  }
  /** Clicks Replay on the first dead letter; the toast's text. */
  async replayFirst() {
    return this.d.toast(() => this.d.page.click('[data-testid=replay]'))
  }
  async purge() {
    await this.d.page.click('[data-testid=purge]')
    await this.d.page.click('[data-testid=purge]')
    await this.d.page.waitForSelector('[data-testid=dead-letters] [data-testid=empty]')
  }
}

export class Queues {
  constructor(d) {
    this.d = d
  }
  async open() {
    await this.d.open('queues', '[data-testid=queues] table, [data-testid=queues] [data-testid=unavailable], [data-testid=queues] [data-testid=empty]')
    return this
  }
  async available() {
    return (await this.d.page.locator('[data-testid=queues] [data-testid=unavailable]').count()) === 0
  }
  /** Pauses a queue by its button; waits until the page shows it paused. */
  async pause(name) {
    await this.d.page.click(`[data-testid=pause][data-queue="${name}"]`)
    await this.d.page.waitForSelector(`[data-testid=resume][data-queue="${name}"]`)
  }
  async resume(name) {
    await this.d.page.click(`[data-testid=resume][data-queue="${name}"]`)
    await this.d.page.waitForSelector(`[data-testid=pause][data-queue="${name}"]`)
  }
}

/** Workers, schedules, circuit breakers: a table, or the note that this version lacks it. */
export class ListPage {
  constructor(d, route, testid) {
    this.d = d
    this.route = route
    this.testid = testid
  }
  async open() {
    const root = `[data-testid=${this.testid}]`
    await this.d.open(this.route, `${root} table, ${root} [data-testid=unavailable], ${root} [data-testid=empty]`)
    return this
  }
  text() {
    return this.d.text(`[data-testid=${this.testid}]`)
  }
}
