import { createPinia, setActivePinia } from 'pinia'
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest'
import { useSession } from './session'

beforeEach(() => setActivePinia(createPinia()))
afterEach(() => vi.unstubAllGlobals())

const reply = (status: number, body?: unknown) =>
  new Response(body === undefined ? null : JSON.stringify(body), { status })

describe('the session store', () => {
  it('signs in with a code, and out', async () => {
    const calls: [string, string][] = []
    vi.stubGlobal(
      'fetch',
      vi.fn(async (path: string, init: RequestInit) => {
        calls.push([init.method ?? 'GET', path])
        return init.method === 'DELETE' ? reply(204) : reply(200, { authenticated: true })
      }),
    )
    const s = useSession()
    expect(s.authenticated).toBeUndefined()
    await s.login({ code: 'abc' })
    expect(s.authenticated).toBe(true)
    await s.logout()
    expect(s.authenticated).toBe(false)
    expect(calls).toEqual([
      ['POST', '/api/v1/session'],
      ['DELETE', '/api/v1/session'],
    ])
  })
  it('tells an unreachable API from a missing session', async () => {
    vi.stubGlobal(
      'fetch',
      vi.fn(async () => Promise.reject(new TypeError('down'))),
    )
    const s = useSession()
    expect(await s.check()).toBe(false)
    expect(s.unreachable).toBe(true)
    vi.stubGlobal(
      'fetch',
      vi.fn(async () => reply(200, { authenticated: false })),
    )
    expect(await s.check()).toBe(false)
    expect(s.unreachable).toBe(false)
  })
})
