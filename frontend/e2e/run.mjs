// `npm run e2e`: the browser tests (node's own test runner).
import { spawnSync } from 'node:child_process'
const r = spawnSync(
  process.execPath,
  ['--test', '--test-reporter=spec', new URL('./ui.test.mjs', import.meta.url).pathname],
  { stdio: 'inherit' },
)
process.exit(r.status ?? 1)
