// A real `aiprox all` and the mock upstream on free loopback ports in a temp dir,
// for the browser tests. The binaries come from AIPROX_BIN_DIR (default the
// workspace's target/debug).
import { spawn } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import { createServer } from 'node:net'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'

const BIN = resolve(
  process.env.AIPROX_BIN_DIR ?? new URL('../../target/debug', import.meta.url).pathname,
)

export function freePort() {
  return new Promise((ok, fail) => {
    const s = createServer()
    s.once('error', fail)
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address()
      s.close(() => ok(port))
    })
  })
}

/** Keeps a process's output, to wait for lines in it. */
function watch(proc) {
  const out = { text: '', exited: null }
  proc.stdout.on('data', (c) => (out.text += c.toString()))
  proc.stderr.on('data', (c) => (out.text += c.toString()))
  proc.once('exit', (code) => (out.exited = code))
  return out
}

/** Resolves with the first match of `re` in the output (before or after now). */
async function waitFor(out, re, what) {
  for (let i = 0; i < 300; i++) {
    const m = re.exec(out.text)
    if (m) return m
    if (out.exited !== null)
      throw new Error(`${what}: exited with ${out.exited}; output:\n${out.text}`)
    await new Promise((r) => setTimeout(r, 100))
  }
  throw new Error(`${what}: not seen in 30 s; output:\n${out.text}`)
}

export async function startStack({ chunks = 24, chunkIntervalMs = 40 } = {}) {
  const dir = mkdtempSync(join(tmpdir(), 'aiprox-ui-'))
  const procs = []
  const mock = spawn(
    join(BIN, 'mock-upstream'),
    [
      '--listen',
      '127.0.0.1:0',
      '--chunks',
      String(chunks),
      '--chunk-interval-ms',
      String(chunkIntervalMs),
    ],
    { cwd: dir },
  )
  procs.push(mock)
  const [, mockAddr] = await waitFor(watch(mock), /listening on (\S+)/, 'mock-upstream')
  const gatewayPort = await freePort()
  const adminPort = await freePort()
  const aiprox = spawn(join(BIN, 'aiprox'), ['all'], {
    cwd: dir,
    env: {
      ...process.env,
      AIPROX_GATEWAY__LISTEN: `127.0.0.1:${gatewayPort}`,
      AIPROX_ADMIN__LISTEN: `127.0.0.1:${adminPort}`,
      AIPROX_ADMIN_TOKEN: '',
      // The Providers view's health, without waiting the default 5 s.
      AIPROX_GATEWAY__HEALTH_REPORT_INTERVAL: '500ms',
      RUST_LOG: 'info',
    },
  })
  procs.push(aiprox)
  const output = watch(aiprox)
  const [link] = await waitFor(
    output,
    /http:\/\/\S+\/login#code=[0-9a-f]+/,
    'aiprox all login link',
  )
  await waitFor(output, /gateway listening/, 'aiprox gateway')
  return {
    dir,
    mockUrl: `http://${mockAddr}`,
    gatewayUrl: `http://127.0.0.1:${gatewayPort}`,
    adminUrl: `http://127.0.0.1:${adminPort}`,
    loginLink: link,
    async stop() {
      for (const p of procs.reverse()) p.kill('SIGTERM')
      await new Promise((r) => setTimeout(r, 300))
      rmSync(dir, { recursive: true, force: true })
    },
  }
}
