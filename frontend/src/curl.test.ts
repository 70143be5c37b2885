import { describe, expect, it } from 'vitest'
import { curlFor } from './curl'

describe('copy as curl', () => {
  it('uses the key placeholder and quotes the body for the shell', () => {
    const c = curlFor('http://127.0.0.1:8080/', '/v1/chat/completions', {
      model: 'demo',
      messages: [{ role: 'user', content: "it's" }],
    })
    expect(c).toContain('curl http://127.0.0.1:8080/v1/chat/completions')
    expect(c).toContain('-H "authorization: Bearer $AIPROX_KEY"')
    expect(c).toContain(`'{"model":"demo","messages":[{"role":"user","content":"it'\\''s"}]}'`)
  })
  it('sends the Anthropic header on /v1/messages', () => {
    expect(curlFor('http://h', '/v1/messages', {})).toContain('x-api-key: $AIPROX_KEY')
  })
})
