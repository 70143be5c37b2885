// The transcript renderer's model, fed with the recorded vendor bodies of
// fixtures/ (copies of ../shared/fixtures/): what a person reading a log sees.
import { readFileSync } from 'node:fs'
import { describe, expect, it } from 'vitest'
import { mediaSrc, transcript, type ToolCall } from './transcript'

const fixture = (path: string): unknown =>
  JSON.parse(readFileSync(new URL('../../fixtures/' + path, import.meta.url), 'utf8'))

/** An Anthropic SSE recording assembled into the message it streams (as the gateway logs it). */
function assembleAnthropic(path: string): unknown {
  const text = readFileSync(new URL('../../fixtures/' + path, import.meta.url), 'utf8')
  const blocks: Record<string, unknown>[] = []
  let stop = ''
  for (const line of text.split('\n')) {
    if (!line.startsWith('data:')) continue
    const e = JSON.parse(line.slice(5))
    if (e.type === 'content_block_start') blocks[e.index] = { ...e.content_block }
    if (e.type === 'content_block_delta') {
      const b = blocks[e.index]!
      if (e.delta.type === 'thinking_delta')
        b.thinking = String(b.thinking ?? '') + e.delta.thinking
      if (e.delta.type === 'text_delta') b.text = String(b.text ?? '') + e.delta.text
    }
    if (e.type === 'message_delta') stop = e.delta.stop_reason
  }
  return { type: 'message', role: 'assistant', content: blocks, stop_reason: stop }
}

describe('OpenAI chat bodies', () => {
  it('shows the system prompt, the question, the call with its result attached, and the answer', () => {
    const t = transcript(
      '/v1/chat/completions',
      fixture('openai/chat_request_tool_result.json'),
      fixture('openai/chat_response_after_tool_result.json'),
    )
    expect(t.format).toBe('openai')
    expect(t.turns.map((x) => x.role)).toEqual(['system', 'user', 'assistant', 'assistant'])
    const call = t.turns[2]!.parts[0] as ToolCall
    expect(call.kind).toBe('tool_call')
    expect(call.name).toBe('get_temperature')
    expect(call.arguments).toBe('{\n  "city": "Tokyo"\n}')
    expect(call.result?.text).toBe('20.0')
    // The tool turn moved into its call: no separate turn is left.
    expect(t.turns.some((x) => x.role === 'tool')).toBe(false)
    expect(t.turns[3]!.answer).toBe(true)
    expect(t.turns[3]!.parts[0]).toMatchObject({ kind: 'text' })
  })

  it('shows an answer that is only tool calls as calls', () => {
    const t = transcript(
      '/v1/chat/completions',
      fixture('openai/chat_request_tools.json'),
      fixture('openai/chat_response_tool_calls.json'),
    )
    const answer = t.turns.at(-1)!
    expect(answer.answer).toBe(true)
    expect(answer.parts).toHaveLength(1)
    expect(answer.parts[0]).toMatchObject({ kind: 'tool_call', name: 'get_temperature' })
    expect(t.stopReason).toBe('tool_calls')
  })

  it('shows images inline, logged ones from the media API', () => {
    const request = fixture('openai/chat_request_vision.json') as {
      messages: { content: { type: string; image_url?: { url: string } }[] }[]
    }
    const t = transcript(
      '/v1/chat/completions',
      request,
      fixture('openai/chat_response_basic.json'),
    )
    expect(t.turns[0]!.parts.map((p) => p.kind)).toEqual(['text', 'image'])
    request.messages[0]!.content[1]!.image_url!.url = 'aiprox-media://ab12'
    const logged = transcript('/v1/chat/completions', request, {})
    expect(logged.turns[0]!.parts[1]).toEqual({ kind: 'image', src: '/api/v1/media/ab12' })
  })

  it('puts the error forward with its kind and message', () => {
    const t = transcript(
      '/v1/chat/completions',
      fixture('openai/chat_request_basic.json'),
      fixture('openai/error_auth_401.json'),
    )
    expect(t.error?.kind).toBe('invalid_request_error')
    expect(t.error?.message).toMatch(/^Incorrect API key provided/)
  })
})

describe('Anthropic messages bodies', () => {
  it('shows tool_use with its tool_result attached and the answer', () => {
    const t = transcript(
      '/v1/messages',
      fixture('anthropic/messages_request_tool_result.json'),
      fixture('anthropic/messages_response_after_tool_result.json'),
    )
    expect(t.format).toBe('anthropic')
    expect(t.turns.map((x) => x.role)).toEqual(['user', 'assistant', 'assistant'])
    const call = t.turns[1]!.parts[0] as ToolCall
    expect(call).toMatchObject({ kind: 'tool_call', name: 'get_weather' })
    expect(JSON.parse(call.arguments)).toEqual({ location: 'San Francisco, CA', units: 'f' })
    expect(call.result?.text).toContain('Sunny')
    expect(t.stopReason).toBe('end_turn')
  })

  it('keeps thinking apart from the answer text', () => {
    const t = transcript(
      '/v1/messages',
      fixture('anthropic/messages_request_thinking.json'),
      assembleAnthropic('anthropic/messages_stream_thinking.sse'),
    )
    const answer = t.turns.at(-1)!
    expect(answer.parts[0]!.kind).toBe('thinking')
    expect((answer.parts[0] as { text: string }).text.length).toBeGreaterThan(20)
    expect(answer.parts.at(-1)!.kind).toBe('text')
  })

  it('shows a base64 image, and a logged one from the media API', () => {
    const request = fixture('anthropic/messages_request_image.json') as {
      messages: { content: { type: string; source?: { data: string } }[] }[]
    }
    const t = transcript('/v1/messages', request, fixture('anthropic/messages_response_basic.json'))
    const image = t.turns[0]!.parts[1] as { kind: string; src: string }
    expect(image.kind).toBe('image')
    expect(image.src.startsWith('data:image/png;base64,iVBOR')).toBe(true)
    request.messages[0]!.content[1]!.source!.data = 'aiprox-media://cd34'
    const logged = transcript('/v1/messages', request, {})
    expect(logged.turns[0]!.parts[1]).toEqual({ kind: 'image', src: '/api/v1/media/cd34' })
  })

  it('shows a system turn inside messages (as Claude Code sends it) and the error', () => {
    const t = transcript(
      '/v1/messages',
      {
        model: 'm',
        max_tokens: 10,
        system: 'Be brief.',
        messages: [
          { role: 'system', content: 'Mid-conversation note' },
          { role: 'user', content: 'hi' },
        ],
      },
      fixture('anthropic/error_overloaded.json'),
    )
    expect(t.turns.map((x) => x.role)).toEqual(['system', 'system', 'user'])
    expect(t.error?.kind).toBe('overloaded_error')
  })

  it('leaves web URLs as they are', () => {
    expect(mediaSrc('https://example.com/a.png')).toBe('https://example.com/a.png')
  })
})

describe('Responses API bodies', () => {
  it('shows the instructions, the question and the answer text', () => {
    const t = transcript(
      '/v1/responses',
      fixture('openai-responses/responses_request_stream_text.json'),
      fixture('openai-responses/responses_response_basic.json'),
    )
    expect(t.format).toBe('responses')
    expect(t.turns[0]!.role).toBe('system')
    const answer = t.turns.at(-1)!
    expect(answer.answer).toBe(true)
    expect(answer.parts.some((p) => p.kind === 'text' && p.text.length > 0)).toBe(true)
    expect(t.stopReason).toBe('completed')
  })

  it('attaches a function call output to its call', () => {
    const t = transcript(
      '/v1/responses',
      {
        model: 'm',
        input: [
          { role: 'user', content: [{ type: 'input_text', text: 'Weather in NYC?' }] },
          {
            type: 'function_call',
            call_id: 'call_1',
            name: 'get_weather',
            arguments: '{"city":"NYC"}',
          },
          { type: 'function_call_output', call_id: 'call_1', output: 'Sunny' },
        ],
      },
      fixture('openai-responses/responses_response_after_function_call_output.json'),
    )
    const calls = t.turns.flatMap((turn) => turn.parts).filter((p) => p.kind === 'tool_call')
    expect(calls).toHaveLength(1)
    expect((calls[0] as ToolCall).result?.text).toBe('Sunny')
    expect((calls[0] as ToolCall).arguments).toContain('"city": "NYC"')
    expect(t.turns.some((turn) => turn.role === 'tool')).toBe(false)
    expect(t.turns.at(-1)!.answer).toBe(true)
  })

  it('shows a string input as the user turn and the call an answer asks for', () => {
    const t = transcript(
      '/v1/responses',
      { model: 'm', input: 'Weather in Paris?' },
      fixture('openai-responses/responses_response_function_call.json'),
    )
    expect(t.turns[0]).toMatchObject({
      role: 'user',
      parts: [{ kind: 'text', text: 'Weather in Paris?' }],
    })
    const answer = t.turns.at(-1)!
    expect(answer.parts.some((p) => p.kind === 'tool_call' && p.name)).toBe(true)
  })
})

describe('legacy completions', () => {
  it('shows the prompt and the completion', () => {
    const t = transcript(
      '/v1/completions',
      { model: 'm', prompt: 'Say this is a test' },
      { object: 'text_completion', choices: [{ text: 'This is a test.', finish_reason: 'stop' }] },
    )
    expect(t.turns.map((x) => x.parts[0])).toEqual([
      { kind: 'text', text: 'Say this is a test' },
      { kind: 'text', text: 'This is a test.' },
    ])
    expect(t.stopReason).toBe('stop')
  })
})
