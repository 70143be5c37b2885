// The log detail drawer over a stubbed admin API: the tools the gateway left out
// of the upstream request are named, in each language, and nothing is shown
// when there were none.
import { flushPromises, mount } from '@vue/test-utils'
import { createPinia } from 'pinia'
import { beforeEach, describe, expect, it, vi } from 'vitest'
import { createI18n } from 'vue-i18n'
import { createMemoryHistory, createRouter } from 'vue-router'
import type { LogDetail } from '@/api/types'
import en from '@/i18n/en.json'
import zhCN from '@/i18n/zh-CN.json'
import LogDetailDrawer from './LogDetailDrawer.vue'

const served = vi.hoisted(() => ({ log: null as unknown }))
vi.mock('@/api/admin', () => ({
  admin: {
    log: () => Promise.resolve(served.log),
    session: () => Promise.resolve({}),
  },
}))

function logged(omitted_tools: string[]): LogDetail {
  return {
    request_id: '01900000-0000-7000-8000-000000000001',
    received_at_ms: 1_795_660_800_000,
    endpoint: '/v1/responses',
    model: 'codex',
    provider: 'anthropic',
    upstream_model: 'claude-sonnet-4-5',
    stream: false,
    status: 200,
    error_kind: '',
    error_message: '',
    input_tokens: 10,
    output_tokens: 2,
    cached_tokens: 0,
    cache_write_tokens: 0,
    cost_usd: 0,
    latency_ms: 12,
    ttft_ms: 0,
    upstream_latency_ms: 10,
    key: '',
    source: '',
    request: { model: 'codex', input: 'hi' },
    response: { object: 'response', output: [] },
    media: [],
    failed_attempts: [],
    omitted_tools,
  }
}

async function drawer(locale: 'en' | 'zh-CN', log: LogDetail) {
  served.log = log
  const i18n = createI18n({ legacy: false, locale, messages: { en, 'zh-CN': zhCN } })
  const router = createRouter({
    history: createMemoryHistory(),
    routes: [{ path: '/', component: { render: () => null } }],
  })
  const wrapper = mount(LogDetailDrawer, {
    props: { id: log.request_id },
    global: { plugins: [i18n, createPinia(), router] },
  })
  await flushPromises()
  return wrapper
}

describe('the log detail drawer', () => {
  beforeEach(() => {
    served.log = null
  })

  it('names the tools left out, in request order', async () => {
    const wrapper = await drawer('en', logged(['web_search', 'namespace']))
    const omitted = wrapper.get('[data-testid="omitted-tools"]')
    expect(omitted.get('dt').text()).toBe('Tools left out:')
    expect(omitted.get('dd').text()).toBe('web_search, namespace')
    expect(omitted.attributes('title')).toBe(en.detail.omitted_tools_hint)
  })

  it('names them in Chinese too', async () => {
    const wrapper = await drawer('zh-CN', logged(['web_search']))
    const omitted = wrapper.get('[data-testid="omitted-tools"]')
    expect(omitted.get('dt').text()).toBe('已略去的工具：')
    expect(omitted.get('dd').text()).toBe('web_search')
  })

  it('shows nothing when every tool was sent', async () => {
    const wrapper = await drawer('en', logged([]))
    expect(wrapper.find('[data-testid="log-detail"]').exists()).toBe(true)
    expect(wrapper.find('[data-testid="omitted-tools"]').exists()).toBe(false)
  })
})
