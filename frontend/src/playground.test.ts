import { readFileSync } from 'node:fs'
import { describe, expect, it } from 'vitest'
import {
  AnswerReader,
  buildRequest,
  code,
  editorFromLog,
  jsonError,
  type Editor,
} from './playground'
import { SseParser } from './sse'

const editor = (over: Partial<Editor> = {}): Editor => ({
  format: 'openai',
  system: 'Be brief.',
  turns: [{ role: 'user', content: 'Hi', image: 'data:image/png;base64,AAAA' }],
  params: {
    temperature: 0.2,
    max_tokens: 50,
    stop: 'END, STOP',
    seed: 7,
    tools: '',
    response_format: '',
  },
  stream: true,
  ...over,
})

const sse = (path: string) =>
  readFileSync(new URL('../../fixtures/' + path, import.meta.url), 'utf8')

describe('the Playground request', () => {
  it('is an OpenAI chat body with the system message, image part and usage in the stream', () => {
    expect(buildRequest(editor(), 'demo')).toEqual({
      model: 'demo',
      messages: [
        { role: 'system', content: 'Be brief.' },
        {
          role: 'user',
          content: [
            { type: 'text', text: 'Hi' },
            { type: 'image_url', image_url: { url: 'data:image/png;base64,AAAA' } },
          ],
        },
      ],
      max_tokens: 50,
      stop: ['END', 'STOP'],
      seed: 7,
      stream_options: { include_usage: true },
      temperature: 0.2,
      stream: true,
    })
  })
  it('is an Anthropic messages body with top-level system and base64 image source', () => {
    const body = buildRequest(editor({ format: 'anthropic', stream: false }), 'claude')
    expect(body.system).toBe('Be brief.')
    expect(body.stop_sequences).toEqual(['END', 'STOP'])
    expect(body.messages).toEqual([
      {
        role: 'user',
        content: [
          { type: 'text', text: 'Hi' },
          { type: 'image', source: { type: 'base64', media_type: 'image/png', data: 'AAAA' } },
        ],
      },
    ])
    expect(body).not.toHaveProperty('seed')
  })
  it('validates the tools JSON', () => {
    expect(jsonError('', 'array')).toBeUndefined()
    expect(jsonError('[{"type":"function"}]', 'array')).toBeUndefined()
    expect(jsonError('{}', 'array')).toBe('expected a JSON array')
    expect(jsonError('[', 'array')).toBeTruthy()
  })
})

describe('reading answers', () => {
  it('reads an OpenAI stream split anywhere: text, then usage', () => {
    const text = sse('openai/chat_stream_basic.sse')
    const parser = new SseParser()
    const reader = new AnswerReader('openai')
    for (let i = 0; i < text.length; i += 7)
      for (const e of parser.push(text.slice(i, i + 7))) reader.event(e.data)
    expect(reader.text.length).toBeGreaterThan(0)
    expect(reader.usage?.output_tokens).toBeGreaterThan(0)
  })
  it('reads an Anthropic stream with a tool call', () => {
    const parser = new SseParser()
    const reader = new AnswerReader('anthropic')
    for (const e of parser.push(sse('anthropic/messages_stream_text_then_tool_use.sse')))
      reader.event(e.data)
    expect(reader.toolCalls[0]?.name).toBeTruthy()
    expect(JSON.parse(reader.toolCalls[0]!.arguments)).toBeTypeOf('object')
    expect(reader.usage?.output_tokens).toBeGreaterThan(0)
  })
})

describe('code and prefill', () => {
  it('writes Python with True/False and the gateway URL', () => {
    const body = buildRequest(editor({ stream: false }), 'demo')
    const py = code('openai', 'http://127.0.0.1:8080', 'openai', body)
    expect(py).toContain('OpenAI(base_url="http://127.0.0.1:8080/v1"')
    expect(py).toContain('stream=False')
    expect(
      code(
        'anthropic',
        'http://h',
        'anthropic',
        buildRequest(editor({ format: 'anthropic' }), 'c'),
      ),
    ).toContain('client.messages.stream(')
    expect(code('curl', 'http://h', 'openai', body)).toContain('curl http://h/v1/chat/completions')
  })
  it('turns a logged request back into the editor', () => {
    const { model, editor: e } = editorFromLog('/v1/chat/completions', {
      model: 'gpt',
      stream: true,
      temperature: 0.5,
      messages: [
        { role: 'system', content: 'S' },
        { role: 'user', content: [{ type: 'text', text: 'Q' }] },
      ],
    })
    expect(model).toBe('gpt')
    expect(e.system).toBe('S')
    expect(e.turns).toEqual([{ role: 'user', content: 'Q' }])
    expect(e.params?.temperature).toBe(0.5)
  })
})
