// The API client: what it sends (same-origin cookie, the CSRF header, JSON) and
// how it reads failures (the admin's error shape, the field, unreachable, 401).
import { afterEach, describe, expect, it, vi } from 'vitest'
import { ApiError, CSRF_HEADER, fieldOf, query, request, whenUnauthorized } from './http'

function answer(status: number, body: unknown) {
  return vi.fn(
    async () => new Response(body === undefined ? null : JSON.stringify(body), { status }),
  )
}

afterEach(() => vi.unstubAllGlobals())

describe('request', () => {
  it('sends JSON with the cookie and the CSRF header', async () => {
    const fetch = answer(201, { ok: true })
    vi.stubGlobal('fetch', fetch)
    expect(await request('POST', '/api/v1/keys', { name: 'a' })).toEqual({ ok: true })
    const [path, init] = fetch.mock.calls[0] as unknown as [string, RequestInit]
    expect(path).toBe('/api/v1/keys')
    expect(init.credentials).toBe('same-origin')
    expect((init.headers as Record<string, string>)[CSRF_HEADER]).toBe('1')
    expect(init.body).toBe('{"name":"a"}')
  })
  it('reads the admin error with its field', async () => {
    vi.stubGlobal(
      'fetch',
      answer(400, {
        error: { code: 'invalid_provider', message: 'base_url: relative URL', field: 'base_url' },
      }),
    )
    const e = (await request('POST', '/x', {}).catch((e) => e)) as ApiError
    expect(e).toBeInstanceOf(ApiError)
    expect([e.status, e.code, e.field, e.message]).toEqual([
      400,
      'invalid_provider',
      'base_url',
      'base_url: relative URL',
    ])
  })
  it('says when the API cannot be reached, and calls back on 401', async () => {
    vi.stubGlobal(
      'fetch',
      vi.fn(async () => Promise.reject(new TypeError('Failed to fetch'))),
    )
    const e = (await request('GET', '/x').catch((e) => e)) as ApiError
    expect(e.unreachable).toBe(true)
    const ended = vi.fn()
    whenUnauthorized(ended)
    vi.stubGlobal('fetch', answer(401, { error: { code: 'unauthorized', message: 'no' } }))
    await request('GET', '/x').catch(() => {})
    expect(ended).toHaveBeenCalledOnce()
  })
  it('answers 204 with nothing', async () => {
    vi.stubGlobal('fetch', answer(204, undefined))
    expect(await request('DELETE', '/x')).toBeUndefined()
  })
})

describe('helpers', () => {
  it('finds the field a message starts with', () => {
    expect(fieldOf('targets[0].model must not be empty')).toBeUndefined()
    expect(fieldOf('targets[0].provider: unknown provider')).toBe('targets')
    expect(fieldOf('base_url: relative URL without a base')).toBe('base_url')
  })
  it('writes query strings from defined values only', () => {
    expect(query({ a: 1, b: undefined, c: '', d: false, e: 'x y' })).toBe('?a=1&d=false&e=x+y')
    expect(query({})).toBe('')
  })
})
