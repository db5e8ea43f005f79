/** CommonJS twin of paths.ts (see there); the build puts it in place of paths.ts for dist/cjs. */
import { resolve } from 'node:path'

export const packageRoot: string = resolve(__dirname, '..', '..', '..')
export const nodeRequire: NodeRequire = require
