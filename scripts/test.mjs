#!/usr/bin/env node
/**
 * `npm test`: every test. Builds what is missing (scripts/ensure-built.mjs), then runs
 * `cargo test --workspace` (the Rust core, SQLite and — with TASKITO_PG_URL — PostgreSQL) and the
 * ava suite (the public API on both cores). Both run even when the first fails; the exit code says
 * whether anything failed. Extra arguments go to ava (e.g. `npm test -- __test__/cli.test.mjs`),
 * and then cargo is skipped.
 */
import { spawnSync } from 'node:child_process'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'

const root = join(dirname(fileURLToPath(import.meta.url)), '..')
const run = (cmd, args) => spawnSync(cmd, args, { cwd: root, stdio: 'inherit' }).status ?? 1

const built = run(process.execPath, [join(root, 'scripts', 'ensure-built.mjs')])
if (built !== 0) process.exit(built)
const avaArgs = process.argv.slice(2)
const cargo = avaArgs.length === 0 ? run('cargo', ['test', '--workspace', '--no-fail-fast']) : 0
const ava = run(process.execPath, [join(root, 'node_modules', 'ava', 'entrypoints', 'cli.mjs'), ...avaArgs])
if (cargo !== 0) process.stderr.write('npm test: cargo test failed (see above)\n')
process.exit(cargo !== 0 || ava !== 0 ? 1 : 0)
