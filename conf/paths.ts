import { dirname, join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'

// This file is conf/paths.ts in the source tree and dist/conf/paths.js once built.
const here = dirname(fileURLToPath(import.meta.url))
const up = here.endsWith(join('dist', 'conf')) ? '../..' : '..'

export const projectRoot = resolve(here, up)
export const viewsDir = join(projectRoot, 'views')
export const publicDir = join(projectRoot, 'public')
