// The web UI end to end in real Chromium (Debian's, through playwright-core),
// against a real `aiprox all` and the mock upstream. Screenshots of every view go
// to e2e/out/ (not committed).
import assert from 'node:assert/strict'
import { mkdirSync } from 'node:fs'
import { after, before, test } from 'node:test'
import { chromium } from 'playwright-core'
import { startStack } from './stack.mjs'

const OUT = new URL('./out/', import.meta.url).pathname
mkdirSync(OUT, { recursive: true })
const CHROMIUM_ARGS = [
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
]
// A 2x2 red PNG.
const PNG = Buffer.from(
  'iVBORw0KGgoAAAANSUhEUgAAAAIAAAACCAIAAAD91JpzAAAAFklEQVR4nGP8z8DAwMDAxMDAwMDAAAANHQEDasKb6QAAAABJRU5ErkJggg==',
  'base64',
)

let stack, browser, page
const problems = []
const failed = []

before(async () => {
  stack = await startStack()
  browser = await chromium.launch({
    executablePath: process.env.CHROME_PATH ?? '/usr/bin/chromium',
    args: CHROMIUM_ARGS,
  })
  const context = await browser.newContext({
    viewport: { width: 1366, height: 860 },
    colorScheme: 'light',
    locale: 'en-US',
  })
  page = await context.newPage()
  page.on('console', (m) => {
    // Chromium reports every 4xx answer as "Failed to load resource": those are
    // checked below by status, against the ones the tests provoke on purpose.
    if (
      (m.type() === 'error' || m.type() === 'warning') &&
      !m.text().startsWith('Failed to load resource')
    ) {
      problems.push(`console ${m.type()}: ${m.text()}`)
    }
  })
  page.on('response', (r) => {
    if (r.status() >= 400)
      failed.push(`${r.status()} ${r.request().method()} ${new URL(r.url()).pathname}`)
  })
  page.on('pageerror', (e) => problems.push(`page error: ${e.message}`))
})

after(async () => {
  await browser?.close()
  await stack?.stop()
})

const shot = (name) => page.screenshot({ path: `${OUT}${name}.png`, fullPage: false })

async function gatewayChat(content) {
  const r = await fetch(`${stack.gatewayUrl}/v1/chat/completions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ model: 'demo', messages: [{ role: 'user', content }] }),
  })
  assert.equal(r.status, 200)
  await r.text()
}

test('the web UI', { concurrency: false }, async (t) => {
  await t.test('logs in with the printed link, which leaves the address bar', async () => {
    await page.goto(stack.loginLink)
    await page.waitForURL(/\/dashboard/)
    assert.ok(!page.url().includes('code='), page.url())
    // The link works once.
    const again = await browser.newPage()
    await again.goto(stack.loginLink)
    await again.getByRole('alert').waitFor()
    await again.close()
  })

  await t.test(
    'creates a provider through the form, with a validation error at its field first',
    async () => {
      await page.goto(`${stack.adminUrl}/providers`)
      await page.getByTestId('new-provider').click()
      await page.locator('#p-name').fill('mock')
      await page.locator('#p-base_url').fill('not a url')
      await page.locator('#p-models').fill('gpt-4o')
      await page.getByTestId('save').click()
      const fieldError = page.getByTestId('error-base_url')
      await fieldError.waitFor()
      assert.match(await fieldError.innerText(), /base_url/)
      await page.locator('#p-base_url').fill(`${stack.mockUrl}/v1`)
      await page.getByTestId('save').click()
      await page.locator('[data-provider="mock"]').waitFor()
      await page.getByTestId('test-mock').click()
      const result = page.locator('[data-provider="mock"] [data-testid="test-result"]')
      await result.waitFor()
      assert.match(await result.innerText(), /Connected in/)
      await shot('providers')
    },
  )

  await t.test('creates a mapping through the form', async () => {
    await page.goto(`${stack.adminUrl}/mappings`)
    await page.getByTestId('new-mapping').click()
    await page.getByTestId('save').click()
    await page.getByTestId('error-alias').waitFor()
    await page.locator('#m-alias').fill('gpt')
    await page.locator('#m-p-0').selectOption('mock')
    await page.locator('#m-m-0').fill('gpt-4o')
    await page.getByTestId('save').click()
    await page.locator('[data-mapping="gpt"]').waitFor()
    assert.match(await page.locator('[data-mapping="gpt"]').innerText(), /mock\/gpt-4o/)
    await shot('mappings')
  })

  await t.test('streams a Playground answer token by token, with an image attached', async () => {
    await page.goto(`${stack.adminUrl}/playground`)
    const model = page.getByTestId('pg-model').first()
    await model.fill('gpt')
    await page.getByTestId('pg-content').first().fill('Tell me about the zebra-4711 please')
    await page
      .locator('input[type=file]')
      .first()
      .setInputFiles({ name: 'red.png', mimeType: 'image/png', buffer: PNG })
    await page.locator('img[src^="data:image/png"]').waitFor()
    await page.getByTestId('pg-send').click()
    const answer = page.getByTestId('pg-answer-text').first()
    // Text grows while the stream runs (24 chunks, 40 ms apart), then it ends.
    const lengths = []
    await page.getByTestId('pg-stop').waitFor()
    for (let i = 0; i < 40 && (await page.getByTestId('pg-stop').count()) > 0; i++) {
      lengths.push((await answer.innerText()).replace('▍', '').length)
      await page.waitForTimeout(50)
    }
    await page.getByTestId('pg-send').waitFor()
    const final = (await answer.innerText()).length
    const partial = lengths.filter((n) => n > 0 && n < final)
    assert.ok(
      partial.length >= 2,
      `expected partial answers before the end, saw ${lengths} then ${final}`,
    )
    assert.match(await page.getByTestId('pg-stats').first().innerText(), /TTFT \d/)
    await shot('playground')
  })

  await t.test(
    'finds the Playground request by text search and shows its transcript with the image',
    async () => {
      await page.goto(`${stack.adminUrl}/logs`)
      await page.getByTestId('log-search').waitFor()
      await page.keyboard.press('/')
      await page.keyboard.type('zebra-4711')
      await page.keyboard.press('Enter')
      await page.waitForFunction(() => location.search.includes('q=zebra-4711'))
      const row = page.locator('[data-testid="logs-table"] tbody tr[data-request-id]')
      await row.first().waitFor()
      assert.equal(await row.count(), 1)
      assert.match(await row.first().innerText(), /playground/)
      await row.first().click()
      await page.getByTestId('log-detail').waitFor()
      const transcript = page.getByTestId('transcript')
      await transcript.waitFor()
      assert.match(await transcript.innerText(), /zebra-4711/)
      const img = transcript.getByTestId('transcript-image')
      await img.waitFor()
      // Loaded from the media API (the media writer stores it a moment after the log).
      let width = 0
      for (let i = 0; i < 40 && width === 0; i++) {
        await page.waitForTimeout(250)
        width = await img.evaluate((el) => el.naturalWidth)
        if (width === 0)
          await img.evaluate((el) => (el.src = el.src.split('?')[0] + '?retry=' + Date.now()))
      }
      assert.equal(width, 2)
      assert.match(await img.getAttribute('src'), /^\/api\/v1\/media\/[0-9a-f]{64}/)
      await shot('log-detail')
      await page.keyboard.press('Escape')
      await page.getByTestId('log-detail').waitFor({ state: 'detached' })
      await shot('logs')
    },
  )

  await t.test('counts every request on the Dashboard', async () => {
    for (let i = 0; i < 3; i++) await gatewayChat(`dashboard check ${i}`)
    // 1 Playground request and 3 direct ones.
    let shown = ''
    for (let i = 0; i < 20 && shown !== '4'; i++) {
      await page.goto(`${stack.adminUrl}/dashboard?range=1h`)
      const tile = page.getByTestId('tile-Requests').getByTestId('tile-value')
      await tile.waitFor()
      shown = (await tile.innerText()).trim()
      if (shown !== '4') await page.waitForTimeout(500)
    }
    assert.equal(shown, '4')
    await page.locator('canvas').first().waitFor()
    await shot('dashboard')
    await page.goto(`${stack.adminUrl}/analytics?range=1h&split=model`)
    await page.locator('canvas').first().waitFor()
    await shot('analytics')
  })

  await t.test("shows a request's failed calls before the target that answered", async () => {
    // `resilient`: the mock first (made to fail), then the built-in demo.
    await page.goto(`${stack.adminUrl}/mappings`)
    await page.getByTestId('new-mapping').click()
    await page.locator('#m-alias').fill('resilient')
    await page.locator('#m-p-0').selectOption('mock')
    await page.locator('#m-m-0').fill('gpt-4o')
    await page.getByTestId('add-target').click()
    await page.locator('#m-p-1').selectOption('demo')
    await page.locator('#m-m-1').fill('echo')
    await page.getByTestId('save').click()
    await page.locator('[data-mapping="resilient"]').waitFor()
    await shot('mappings-fallback')
    const behave = (behavior) =>
      fetch(`${stack.mockUrl}/_mock/behavior`, {
        method: 'PUT',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify(behavior),
      })
    await behave({ failure: { kind: 'status', status: 503 } })
    // The live configuration reaches the gateway a moment after the save.
    let answered
    for (let i = 0; i < 40; i++) {
      answered = await fetch(`${stack.gatewayUrl}/v1/chat/completions`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({
          model: 'resilient',
          messages: [{ role: 'user', content: 'fallback-8812' }],
        }),
      })
      if (answered.status === 200) break
      await answered.text()
      await page.waitForTimeout(250)
    }
    assert.equal(answered.status, 200)
    await answered.text()
    await behave({})
    await page.goto(`${stack.adminUrl}/logs?q=fallback-8812`)
    const row = page.locator('[data-testid="logs-table"] tbody tr[data-request-id]')
    await row.first().waitFor()
    await row.first().click()
    const failedCalls = page.getByTestId('failed-attempts')
    await failedCalls.waitFor()
    assert.match(await failedCalls.innerText(), /mock\/gpt-4o · 503/)
    await shot('log-detail-failed-attempts')
    await page.keyboard.press('Escape')
  })

  await t.test(
    'shows a Responses API request: its function call in the transcript, the tools left out',
    async () => {
      const r = await fetch(`${stack.gatewayUrl}/v1/responses`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({
          model: 'mock/gpt-4o',
          instructions: 'Answer briefly.',
          input: 'What is the weather in Paris? responses-5521',
          tools: [
            { type: 'web_search' },
            {
              type: 'function',
              name: 'get_weather',
              description: 'The weather in a city',
              parameters: { type: 'object', properties: { location: { type: 'string' } } },
            },
          ],
        }),
      })
      assert.equal(r.status, 200)
      await r.text()
      await page.goto(`${stack.adminUrl}/logs?q=responses-5521`)
      const row = page.locator('[data-testid="logs-table"] tbody tr[data-request-id]')
      await row.first().waitFor()
      await row.first().click()
      const omitted = page.getByTestId('omitted-tools')
      await omitted.waitFor()
      assert.match(await omitted.innerText(), /web_search/)
      const transcript = page.getByTestId('transcript')
      assert.match(await transcript.innerText(), /responses-5521/)
      // The mock answers with its recorded call.
      assert.match(await transcript.innerText(), /get_temperature/)
      await shot('log-detail-responses')
      await page.keyboard.press('Escape')
    },
  )

  await t.test("sets a mapping's strategy and a backup target's weight", async () => {
    await page.goto(`${stack.adminUrl}/mappings`)
    const row = page.locator('[data-mapping="resilient"]')
    await row.getByRole('button', { name: 'Edit' }).click()
    await page.getByTestId('strategy-select').selectOption('weighted')
    await page.getByTestId('weight-1').fill('0')
    await page.getByTestId('save').click()
    await row.getByTestId('strategy').getByText('Weighted').waitFor()
    await shot('mappings-weighted')
    // What the form saved, as the admin API reads it (the page's session).
    const saved = await page.evaluate(async () =>
      (await fetch('/api/v1/mappings/resilient')).json(),
    )
    assert.equal(saved.strategy, 'weighted')
    assert.deepEqual(
      saved.targets.map((x) => x.weight),
      [1, 0],
    )
  })

  await t.test('shows a target ejected after failing on the Providers view', async () => {
    const behave = (behavior) =>
      fetch(`${stack.mockUrl}/_mock/behavior`, {
        method: 'PUT',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify(behavior),
      })
    // `resilient` is weighted now, the mock first (the built-in demo a backup):
    // five failures in a row eject the mock's target.
    await behave({ failure: { kind: 'status', status: 503 } })
    for (let i = 0; i < 5; i++) {
      const r = await fetch(`${stack.gatewayUrl}/v1/chat/completions`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ model: 'resilient', messages: [{ role: 'user', content: 'x' }] }),
      })
      assert.equal(r.status, 200)
      await r.text()
    }
    await behave({})
    await page.goto(`${stack.adminUrl}/providers`)
    const mock = page.getByTestId('health-mock')
    await mock.locator('[data-health="ejected"]').waitFor({ timeout: 15000 })
    assert.match(await mock.innerText(), /Ejected\s*gpt-4o/)
    assert.match(await mock.innerText(), /ejected on 1 of 1 gateways/)
    await shot('providers-health')
  })

  await t.test('creates a key (shown once) and revokes it', async () => {
    await page.goto(`${stack.adminUrl}/keys`)
    await page.getByTestId('new-key').click()
    await page.locator('#k-name').fill('ci')
    await page.getByTestId('create-key').click()
    const secret = await page.getByTestId('secret').innerText()
    assert.match(secret, /^sk-aiprox-/)
    await shot('key-created')
    await page.keyboard.press('Escape')
    const row = page.locator('[data-key="ci"]')
    await row.waitFor()
    assert.ok(!(await page.content()).includes(secret), 'the secret is shown once only')
    await page.getByTestId('revoke-ci').click()
    await page.getByTestId('confirm').click()
    await row.getByText('Revoked').waitFor()
    await shot('keys')
  })

  await t.test("sets a key's limits and budget and shows its spend against it", async () => {
    await page.goto(`${stack.adminUrl}/keys`)
    await page.getByTestId('new-key').click()
    await page.locator('#k-name').fill('budgeted')
    await page.locator('#k-rpm').fill('100')
    await page.locator('#k-budget').fill('5')
    await page.getByTestId('create-key').click()
    await page.getByTestId('secret').waitFor()
    await page.keyboard.press('Escape')
    const row = page.locator('[data-key="budgeted"]')
    await row.getByTestId('key-budget').waitFor()
    assert.match(await row.getByTestId('key-limits').innerText(), /100 req\/min/)
    assert.match(await row.getByTestId('key-budget').innerText(), /\$0\.0000 of \$5\.00 monthly/)
    await page.getByTestId('limits-budgeted').click()
    await page.locator('#k-models').fill('gpt, demo')
    await page.getByTestId('create-key').click()
    await row.getByText('gpt, demo').waitFor()
    await shot('keys-limits')
    const saved = await page.evaluate(async () =>
      (await (await fetch('/api/v1/keys')).json()).data.find((k) => k.name === 'budgeted'),
    )
    assert.deepEqual(saved.limits, {
      requests_per_minute: 100,
      models: ['gpt', 'demo'],
      budget: { usd: 5, period: 'month' },
    })
  })

  await t.test('switches to dark mode and Chinese', async () => {
    await page.goto(`${stack.adminUrl}/dashboard`)
    await page.getByTestId('theme').click()
    assert.equal(
      await page.evaluate(() => document.documentElement.classList.contains('dark')),
      true,
    )
    await page.getByTestId('locale').selectOption('zh-CN')
    await page.getByRole('link', { name: '仪表盘' }).waitFor()
    await page.locator('canvas').first().waitFor()
    await shot('dashboard-dark-zh')
    await page.reload()
    assert.equal(
      await page.evaluate(() => document.documentElement.classList.contains('dark')),
      true,
    )
    await page.getByRole('link', { name: '日志' }).waitFor()
    // The configuration views, dark and in Chinese, to look at.
    await page.goto(`${stack.adminUrl}/providers`)
    await page.locator('[data-provider="mock"] [data-health]').first().waitFor()
    await shot('providers-dark-zh')
    await page.goto(`${stack.adminUrl}/mappings`)
    await page.locator('[data-mapping="resilient"]').waitFor()
    await shot('mappings-dark-zh')
    await page.locator('[data-mapping="resilient"]').getByRole('button', { name: '编辑' }).click()
    await page.getByTestId('mapping-form').waitFor()
    await shot('mapping-form-dark-zh')
    await page.keyboard.press('Escape')
    await page.goto(`${stack.adminUrl}/keys`)
    await page.locator('[data-key="budgeted"]').getByTestId('key-budget').waitFor()
    await shot('keys-dark-zh')
    await page.getByTestId('limits-budgeted').click()
    await page.getByTestId('key-form').waitFor()
    await shot('key-limits-form-dark-zh')
    await page.keyboard.press('Escape')
    await page.goto(`${stack.adminUrl}/logs?q=responses-5521`)
    await page.locator('[data-testid="logs-table"] tbody tr[data-request-id]').first().click()
    await page.getByTestId('omitted-tools').waitFor()
    await shot('log-detail-responses-dark-zh')
    await page.keyboard.press('Escape')
  })

  await t.test('logs out', async () => {
    await page.getByTestId('logout').click()
    await page.waitForURL(/\/login/)
    const r = await page.evaluate(async () => (await fetch('/api/v1/providers')).status)
    assert.equal(r, 401)
  })

  await t.test(
    'left nothing in the browser console, and failed only where the tests meant it to',
    () => {
      assert.deepEqual(problems, [])
      assert.deepEqual(failed, [
        '400 POST /api/v1/providers', // the bad base_url
        '400 POST /api/v1/mappings', // the empty alias
        '401 GET /api/v1/providers', // after logout
      ])
    },
  )
})
