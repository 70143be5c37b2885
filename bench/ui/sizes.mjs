// The JavaScript a first visit to each route loads before it can draw (the entry,
// the route's chunk and their static imports), gzipped, from a Vite build with
// its manifest. Usage: node sizes.mjs (builds into a temporary directory).
import { execFileSync } from 'node:child_process'
import { mkdtempSync, readFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { gzipSync } from 'node:zlib'

const frontend = new URL('../../frontend/', import.meta.url).pathname
const out = mkdtempSync(join(tmpdir(), 'aiprox-ui-size-'))
execFileSync('npx', ['vite', 'build', '--manifest', '--logLevel', 'error', '--outDir', out], { cwd: frontend, stdio: 'inherit' })
const manifest = JSON.parse(readFileSync(join(out, '.vite/manifest.json'), 'utf8'))
const gz = (file) => gzipSync(readFileSync(join(out, file))).length

/** A chunk and everything it imports statically, once each. */
function closure(key, seen = new Set()) {
  if (seen.has(key)) return seen
  seen.add(key)
  for (const i of manifest[key].imports ?? []) closure(i, seen)
  return seen
}
const entry = Object.keys(manifest).find((k) => manifest[k].isEntry)
console.log('| first visit to | JS files before the first paint | gzipped | then ECharts, loaded after it |')
console.log('|---|---:|---:|---:|')
for (const view of ['DashboardView', 'LogsView', 'AnalyticsView', 'PlaygroundView', 'LoginView']) {
  const key = Object.keys(manifest).find((k) => k.includes(`/${view}.vue`))
  const files = new Set([...closure(entry), ...closure(key)])
  const bytes = [...files].reduce((n, k) => n + gz(manifest[k].file), 0)
  const charts = Object.keys(manifest).find((k) => k.endsWith('/ChartCard.vue'))
  // Loaded later: ChartCard (with ECharts), when a chunk of the first paint imports it dynamically.
  const loadsCharts = [...files].some((k) => (manifest[k].dynamicImports ?? []).includes(charts))
  const lazy = loadsCharts ? [...closure(charts)].filter((k) => !files.has(k)).reduce((n, k) => n + gz(manifest[k].file), 0) : 0
  console.log(`| ${view.replace('View', '')} | ${files.size} | ${(bytes / 1024).toFixed(1)} KB | ${lazy ? (lazy / 1024).toFixed(1) + ' KB' : '–'} |`)
}
