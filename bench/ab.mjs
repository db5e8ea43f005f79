#!/usr/bin/env node
// A/B of two builds, alternated: this machine's speed moves from minute to minute, so a change is
// judged by pairs run back to back, each pair in the other order than the one before (A B, B A,
// A B ...), and by the ratio of each pair, not by runs an hour apart.
//
//   node bench/ab.mjs --a <side> --b <side> --only <workload>[,...] [--pairs N] [--core native|js]
//                     [--quick] [--set key=value ...] [--out <file>]
//
// A side is a checkout with its own build (a folder: its bench/run.mjs runs there, with its own
// dist/ and native core), or a native core file (`*.node`: this checkout's bench with that core,
// through NAPI_RS_NATIVE_LIBRARY_PATH). `--env-a K=V` / `--env-b K=V` add an environment variable
// to one side (an experiment's switch). Prints each metric's values per pair, the ratio B/A of each
// pair and their median, and writes them all to --out (default bench/results-ab.json).

import { execFileSync } from 'node:child_process'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { fileURLToPath } from 'node:url'

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..')

function usage(problem) {
  process.stderr.write(`ab: ${problem}\nusage: node bench/ab.mjs --a <checkout|core.node> --b <checkout|core.node> --only <workloads> [--pairs N] [--core native|js] [--quick] [--set key=value] [--env-a K=V] [--env-b K=V] [--out file]\n`)
  process.exit(2)
}

function parseArgs(argv) {
  const args = { pairs: 3, set: [], env: { a: {}, b: {} }, out: path.join(ROOT, 'bench', 'results-ab.json') }
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]
    const value = () => {
      if (i + 1 >= argv.length) usage(`${a} needs a value`)
      return argv[++i]
    }
    if (a === '--a' || a === '--b') args[a.slice(2)] = path.resolve(value())
    else if (a === '--only') args.only = value()
    else if (a === '--pairs') args.pairs = Number(value())
    else if (a === '--core') args.core = value()
    else if (a === '--quick') args.quick = true
    else if (a === '--set') args.set.push(value())
    else if (a === '--out') args.out = path.resolve(value())
    else if (a === '--env-a' || a === '--env-b') {
      const [k, ...v] = value().split('=')
      if (!k || v.length === 0) usage(`${a} takes K=V`)
      args.env[a.slice(-1)][k] = v.join('=')
    } else usage(`unknown argument ${a}`)
  }
  if (!args.a || !args.b) usage('--a and --b are required')
  if (!args.only) usage('--only is required: name the workloads (a whole bench per side would take an hour)')
  if (!Number.isInteger(args.pairs) || args.pairs < 1) usage('--pairs takes a whole number ≥ 1')
  for (const side of [args.a, args.b]) {
    if (!fs.existsSync(side)) usage(`${side} does not exist`)
    if (!side.endsWith('.node') && !fs.existsSync(path.join(side, 'bench', 'run.mjs'))) usage(`${side} is neither a checkout (no bench/run.mjs) nor a .node file`)
  }
  return args
}

/** One run of the side's bench: its results, keyed `workload/core/metric`. */
function runSide(args, which) {
  const side = args[which]
  const core = side.endsWith('.node') ? { cwd: ROOT, env: { NAPI_RS_NATIVE_LIBRARY_PATH: side } } : { cwd: side, env: {} }
  const out = path.join(os.tmpdir(), `taskito-ab-${process.pid}-${which}.json`)
  const argv = [path.join(core.cwd, 'bench', 'run.mjs'), '--only', args.only, '--runs', '1', '--out', out]
  if (args.core) argv.push('--core', args.core)
  if (args.quick) argv.push('--quick')
  for (const s of args.set) argv.push('--set', s)
  execFileSync(process.execPath, argv, { cwd: core.cwd, env: { ...process.env, ...core.env, ...args.env[which] }, stdio: ['ignore', 'ignore', 'inherit'] })
  const results = JSON.parse(fs.readFileSync(out, 'utf8')).results
  fs.rmSync(out, { force: true })
  const values = new Map()
  for (const r of results) {
    if (r.error) throw new Error(`${which}: ${r.workload} on ${r.core} failed: ${r.error}`)
    for (const m of r.metrics ?? []) values.set(`${r.workload} / ${r.core} / ${m.key}`, { value: m.value, unit: m.unit, lowerIsBetter: m.lowerIsBetter === true })
  }
  return values
}

const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b)
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2
}
const fmt = (x) => (Math.abs(x) >= 100 ? Math.round(x).toLocaleString('en-US') : x.toFixed(2))

function main() {
  const args = parseArgs(process.argv.slice(2))
  const pairs = []
  for (let i = 0; i < args.pairs; i++) {
    const order = i % 2 === 0 ? ['a', 'b'] : ['b', 'a']
    const pair = {}
    for (const which of order) {
      process.stderr.write(`pair ${i + 1}/${args.pairs}: ${which.toUpperCase()} ...\n`)
      pair[which] = runSide(args, which)
    }
    pairs.push(pair)
  }
  const keys = [...pairs[0].a.keys()].filter((k) => pairs.every((p) => p.a.has(k) && p.b.has(k)))
  const rows = keys.map((key) => {
    const a = pairs.map((p) => p.a.get(key).value)
    const b = pairs.map((p) => p.b.get(key).value)
    const ratios = a.map((x, i) => (x === 0 ? NaN : b[i] / x))
    const { unit, lowerIsBetter } = pairs[0].a.get(key)
    return { key, unit, lowerIsBetter, a, b, ratios, medianRatio: median(ratios) }
  })
  const lines = ['| metric | A | B | B/A per pair | median B/A |', '| --- | --- | --- | --- | --: |']
  for (const r of rows) {
    const better = r.lowerIsBetter ? ' (lower is better)' : ''
    lines.push(`| ${r.key} (${r.unit})${better} | ${r.a.map(fmt).join(', ')} | ${r.b.map(fmt).join(', ')} | ${r.ratios.map((x) => x.toFixed(2)).join(', ')} | ${r.medianRatio.toFixed(2)} |`)
  }
  process.stdout.write(`A = ${args.a}\nB = ${args.b}\n${lines.join('\n')}\n`)
  fs.writeFileSync(args.out, JSON.stringify({ date: new Date().toISOString(), a: args.a, b: args.b, env: args.env, only: args.only, set: args.set, rows }, null, 2))
  process.stdout.write(`wrote ${path.relative(process.cwd(), args.out)}\n`)
}

main()
