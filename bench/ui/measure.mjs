// The web UI's speed on a large log: `admin-logs ROWS --serve` (PostgreSQL with
// ROWS logs over ten days and their rollups, the admin with the UI), then in
// Debian's Chromium:
// - Logs: from the click on "Logs" (the app already open) to the first page's
//   rows on screen, and the same on a cold load of /logs;
// - Dashboard: from the click on "Dashboard" to every tile and both charts drawn;
// - Lighthouse performance and accessibility of Dashboard and Logs.
// Prints a markdown report. Usage: ROWS=1000000 node measure.mjs
import { spawn, spawnSync } from 'node:child_process'
import { mkdirSync, readFileSync } from 'node:fs'
import { chromium } from 'playwright-core'

const ROWS = process.env.ROWS ?? '1000000'
const BIN = process.env.BIN ?? new URL('../../target/release', import.meta.url).pathname
const CHROME = process.env.CHROME_PATH ?? '/usr/bin/chromium'
const FLAGS = ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync']
const RUNS = 10
const OUT = new URL('./out/', import.meta.url).pathname
mkdirSync(OUT, { recursive: true })

const server = spawn(`${BIN}/admin-logs`, [ROWS, '--serve'], { stdio: ['ignore', 'pipe', 'inherit'] })
const [base, token] = await new Promise((ok, fail) => {
  let out = ''
  server.stdout.on('data', (c) => {
    out += c
    const m = /serving (\S+) (\S+)/.exec(out)
    if (m) ok([m[1], m[2]])
  })
  server.once('exit', (code) => fail(new Error(`admin-logs exited ${code}`)))
})

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]
const max = (xs) => Math.max(...xs)

try {
  const browser = await chromium.launch({ executablePath: CHROME, args: FLAGS })
  const context = await browser.newContext({ viewport: { width: 1440, height: 900 } })
  const page = await context.newPage()
  await page.goto(`${base}/login`)
  await page.locator('#token').fill(token)
  await page.getByRole('button', { name: 'Sign in' }).click()
  await page.waitForURL(/dashboard/)
  const cookie = (await context.cookies()).find((c) => c.name === 'aiprox_session')

  const dashboardDrawn = () =>
    page.waitForFunction(() => {
      const tiles = document.querySelectorAll('[data-testid="tile-value"]')
      const canvases = document.querySelectorAll('canvas')
      return tiles.length === 8 && canvases.length >= 2 && !document.querySelector('.animate-pulse')
    }, undefined, { polling: 'raf', timeout: 30_000 })
  const logsDrawn = () =>
    page.waitForFunction(() => document.querySelectorAll('tr[data-request-id]').length >= 50, undefined, { polling: 'raf', timeout: 30_000 })

  const time = async (navigate, drawn) => {
    const t0 = await page.evaluate(() => performance.now())
    await navigate()
    await drawn()
    return (await page.evaluate(() => performance.now())) - t0
  }
  const warm = { logs: [], dashboard: [], logsCold: [] }
  for (let i = 0; i < RUNS + 1; i++) {
    await page.getByRole('link', { name: 'Playground' }).click()
    await page.getByTestId('pg-send').waitFor()
    const l = await time(() => page.getByRole('link', { name: 'Logs' }).click(), logsDrawn)
    await page.getByRole('link', { name: 'Playground' }).click()
    await page.getByTestId('pg-send').waitFor()
    const d = await time(() => page.getByRole('link', { name: 'Dashboard' }).click(), dashboardDrawn)
    if (i > 0) {
      warm.logs.push(l)
      warm.dashboard.push(d)
    }
  }
  for (let i = 0; i < RUNS; i++) {
    const started = Date.now()
    await page.goto(`${base}/logs`)
    await logsDrawn()
    warm.logsCold.push(Date.now() - started)
  }
  await page.goto(`${base}/dashboard?range=7d`)
  await dashboardDrawn()
  await page.screenshot({ path: `${OUT}dashboard-1m.png` })
  await browser.close()

  const lighthouse = (path, preset) => {
    const report = `${OUT}lighthouse-${path}-${preset}.json`
    const r = spawnSync(
      'npx',
      ['lighthouse', `${base}/${path}`, ...(preset === 'desktop' ? ['--preset=desktop'] : []), '--quiet', '--output=json', `--output-path=${report}`, '--only-categories=performance,accessibility', `--chrome-flags=--headless=new ${FLAGS.join(' ')}`, `--extra-headers=${JSON.stringify({ Cookie: `aiprox_session=${cookie.value}` })}`],
      { env: { ...process.env, CHROME_PATH: CHROME }, stdio: ['ignore', 'ignore', 'inherit'] },
    )
    if (r.status !== 0) return { performance: NaN, accessibility: NaN, lcp: NaN }
    const j = JSON.parse(readFileSync(report, 'utf8'))
    if (j.configSettings.formFactor !== preset) throw new Error(`${report}: ran as ${j.configSettings.formFactor}, not ${preset}`)
    return {
      cls: j.audits['cumulative-layout-shift'].numericValue,
      performance: Math.round(j.categories.performance.score * 100),
      accessibility: Math.round(j.categories.accessibility.score * 100),
      lcp: j.audits['largest-contentful-paint'].numericValue,
      tbt: j.audits['total-blocking-time'].numericValue,
      failed: j.categories.accessibility.auditRefs.filter((a) => a.weight > 0 && j.audits[a.id].score === 0).map((a) => a.id),
    }
  }
  // Lighthouse's default is a throttled phone (4x slower CPU, slow 4G); the
  // desktop preset is the laptop an operator opens the UI on. Both are reported.
  const lh = {
    'dashboard, desktop': lighthouse('dashboard', 'desktop'),
    'logs, desktop': lighthouse('logs', 'desktop'),
    'dashboard, mobile (default)': lighthouse('dashboard', 'mobile'),
    'logs, mobile (default)': lighthouse('logs', 'mobile'),
  }

  console.log(`| measurement (${Number(ROWS).toLocaleString('en')} logs in PostgreSQL) | median | max | target |`)
  console.log('|---|---:|---:|---:|')
  console.log(`| Logs: click → first 50 rows drawn | ${median(warm.logs).toFixed(0)} ms | ${max(warm.logs).toFixed(0)} ms | ≤ 300 ms |`)
  console.log(`| Logs: cold page load → first 50 rows drawn | ${median(warm.logsCold).toFixed(0)} ms | ${max(warm.logsCold).toFixed(0)} ms | |`)
  console.log(`| Dashboard (24 h): click → tiles and charts drawn | ${median(warm.dashboard).toFixed(0)} ms | ${max(warm.dashboard).toFixed(0)} ms | ≤ 500 ms |`)
  console.log()
  console.log('| Lighthouse | performance | accessibility | LCP | TBT | CLS | failed accessibility audits |')
  console.log('|---|---:|---:|---:|---:|---:|---|')
  for (const [name, r] of Object.entries(lh)) {
    console.log(`| ${name} | ${r.performance} | ${r.accessibility} | ${(r.lcp / 1000).toFixed(2)} s | ${Math.round(r.tbt)} ms | ${r.cls?.toFixed(3)} | ${r.failed?.join(', ') || 'none'} |`)
  }
} finally {
  server.kill('SIGINT')
}
