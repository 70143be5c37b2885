// The Playground's request: built from the editor's state in either API format,
// read back from a streamed or whole answer, and written out as code.

export type Format = 'openai' | 'anthropic'

export interface EditorTurn {
  role: 'user' | 'assistant'
  content: string
  /** A `data:` URL of an attached image. */
  image?: string
}

export interface Params {
  temperature?: number
  top_p?: number
  max_tokens?: number
  stop: string
  seed?: number
  /** JSON text of a tools array, in the chosen format's shape. */
  tools: string
  /** JSON text of OpenAI's `response_format`. */
  response_format: string
}

export interface Editor {
  format: Format
  system: string
  turns: EditorTurn[]
  params: Params
  stream: boolean
}

export const endpointOf = (f: Format) => (f === 'openai' ? '/v1/chat/completions' : '/v1/messages')

/** The error of a JSON field, or undefined when it is empty or valid. */
export function jsonError(text: string, want: 'array' | 'object'): string | undefined {
  if (!text.trim()) return undefined
  try {
    const v = JSON.parse(text)
    const ok =
      want === 'array' ? Array.isArray(v) : typeof v === 'object' && v !== null && !Array.isArray(v)
    return ok ? undefined : `expected a JSON ${want}`
  } catch (e) {
    return e instanceof Error ? e.message : String(e)
  }
}

function dataUrlParts(url: string): { media_type: string; data: string } | undefined {
  const m = /^data:([^;,]+);base64,(.*)$/s.exec(url)
  return m ? { media_type: m[1]!, data: m[2]! } : undefined
}

export function buildRequest(e: Editor, model: string): Record<string, unknown> {
  const p = e.params
  const stop = p.stop
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean)
  const body: Record<string, unknown> = { model }
  if (e.format === 'openai') {
    const messages: unknown[] = []
    if (e.system.trim()) messages.push({ role: 'system', content: e.system })
    for (const t of e.turns) {
      messages.push(
        t.image
          ? {
              role: t.role,
              content: [
                { type: 'text', text: t.content },
                { type: 'image_url', image_url: { url: t.image } },
              ],
            }
          : { role: t.role, content: t.content },
      )
    }
    body.messages = messages
    if (p.max_tokens !== undefined) body.max_tokens = p.max_tokens
    if (stop.length) body.stop = stop
    if (p.seed !== undefined) body.seed = p.seed
    if (p.response_format.trim()) body.response_format = JSON.parse(p.response_format)
    if (e.stream) body.stream_options = { include_usage: true }
  } else {
    if (e.system.trim()) body.system = e.system
    body.messages = e.turns.map((t) => {
      const img = t.image ? dataUrlParts(t.image) : undefined
      return img
        ? {
            role: t.role,
            content: [
              { type: 'text', text: t.content },
              { type: 'image', source: { type: 'base64', ...img } },
            ],
          }
        : { role: t.role, content: t.content }
    })
    body.max_tokens = p.max_tokens ?? 1024
    if (stop.length) body.stop_sequences = stop
  }
  if (p.temperature !== undefined) body.temperature = p.temperature
  if (p.top_p !== undefined) body.top_p = p.top_p
  if (p.tools.trim()) body.tools = JSON.parse(p.tools)
  body.stream = e.stream
  return body
}

export interface Usage {
  input_tokens: number
  output_tokens: number
}

/** What an answer has said so far, fed event by event (or whole). */
export class AnswerReader {
  text = ''
  toolCalls: { name: string; arguments: string }[] = []
  usage: Usage | undefined
  error: string | undefined

  constructor(readonly format: Format) {}

  /** One stream event's data; true when it added text. */
  event(data: string): boolean {
    if (data === '[DONE]') return false
    let e: Record<string, unknown>
    try {
      e = JSON.parse(data)
    } catch {
      return false
    }
    const before = this.text.length
    if (this.format === 'openai') {
      const choice = (e.choices as Record<string, unknown>[] | undefined)?.[0]
      const delta = choice?.delta as Record<string, unknown> | undefined
      if (typeof delta?.content === 'string') this.text += delta.content
      for (const c of (delta?.tool_calls as Record<string, unknown>[] | undefined) ?? []) {
        const i = Number(c.index ?? 0)
        const f = (c.function ?? {}) as Record<string, unknown>
        const call = (this.toolCalls[i] ??= { name: '', arguments: '' })
        if (typeof f.name === 'string') call.name += f.name
        if (typeof f.arguments === 'string') call.arguments += f.arguments
      }
      const u = e.usage as Record<string, number> | null | undefined
      if (u)
        this.usage = { input_tokens: u.prompt_tokens ?? 0, output_tokens: u.completion_tokens ?? 0 }
      if (e.error) this.error = JSON.stringify(e.error)
    } else {
      if (e.type === 'content_block_start') {
        const b = e.content_block as Record<string, unknown>
        if (b.type === 'tool_use') this.toolCalls.push({ name: String(b.name), arguments: '' })
      }
      if (e.type === 'content_block_delta') {
        const d = e.delta as Record<string, unknown>
        if (d.type === 'text_delta') this.text += String(d.text)
        if (d.type === 'input_json_delta' && this.toolCalls.length)
          this.toolCalls[this.toolCalls.length - 1]!.arguments += String(d.partial_json)
      }
      const u = (
        e.type === 'message_start' ? (e.message as Record<string, unknown>).usage : e.usage
      ) as Record<string, number> | undefined
      if (u)
        this.usage = {
          input_tokens: u.input_tokens ?? this.usage?.input_tokens ?? 0,
          output_tokens: u.output_tokens ?? 0,
        }
      if (e.type === 'error') this.error = JSON.stringify(e.error)
    }
    return this.text.length > before
  }

  /** A whole (not streamed) answer's body. */
  whole(body: Record<string, unknown>): void {
    if (body.error) {
      this.error = JSON.stringify(body.error)
      return
    }
    if (this.format === 'openai') {
      const m = ((body.choices as Record<string, unknown>[] | undefined)?.[0]?.message ??
        {}) as Record<string, unknown>
      this.text = typeof m.content === 'string' ? m.content : ''
      for (const c of (m.tool_calls as Record<string, Record<string, string>>[] | undefined) ??
        []) {
        this.toolCalls.push({
          name: c.function?.name ?? '',
          arguments: c.function?.arguments ?? '',
        })
      }
      const u = body.usage as Record<string, number> | undefined
      if (u)
        this.usage = { input_tokens: u.prompt_tokens ?? 0, output_tokens: u.completion_tokens ?? 0 }
    } else {
      for (const b of (body.content as Record<string, unknown>[] | undefined) ?? []) {
        if (b.type === 'text') this.text += String(b.text)
        if (b.type === 'tool_use')
          this.toolCalls.push({ name: String(b.name), arguments: JSON.stringify(b.input) })
      }
      const u = body.usage as Record<string, number> | undefined
      if (u) this.usage = { input_tokens: u.input_tokens ?? 0, output_tokens: u.output_tokens ?? 0 }
    }
  }
}

const py = (v: unknown): string => {
  // JSON is Python, but for true/false/null.
  return JSON.stringify(v, null, 4)
    .replace(/\btrue\b/g, 'True')
    .replace(/\bfalse\b/g, 'False')
    .replace(/\bnull\b/g, 'None')
}

/** The exact request as curl, Python `openai` or Python `anthropic` (the key from `$AIPROX_KEY`). */
export function code(
  kind: 'curl' | 'openai' | 'anthropic',
  gatewayUrl: string,
  format: Format,
  body: Record<string, unknown>,
): string {
  const base = gatewayUrl.replace(/\/+$/, '')
  if (kind === 'curl') {
    const auth =
      format === 'anthropic' ? 'x-api-key: $AIPROX_KEY' : 'authorization: Bearer $AIPROX_KEY'
    const json = JSON.stringify(body, null, 2).replace(/'/g, `'\\''`)
    return `curl ${body.stream ? '-N ' : ''}${base}${endpointOf(format)} \\\n  -H 'content-type: application/json' \\\n  -H "${auth}" \\\n  -d '${json}'`
  }
  const { stream, ...args } = body
  const kwargs = Object.entries(args)
    .map(([k, v]) => `    ${k}=${py(v).replace(/\n/g, '\n    ')},`)
    .join('\n')
  if (kind === 'openai') {
    const call = `client.chat.completions.create(\n${kwargs}\n    stream=${stream ? 'True' : 'False'},\n)`
    const use = stream
      ? `for chunk in ${call}:\n    if chunk.choices and chunk.choices[0].delta.content:\n        print(chunk.choices[0].delta.content, end="", flush=True)`
      : `response = ${call}\nprint(response.choices[0].message.content)`
    return `import os\nfrom openai import OpenAI\n\nclient = OpenAI(base_url="${base}/v1", api_key=os.environ.get("AIPROX_KEY", "none"))\n\n${use}\n`
  }
  const use = stream
    ? `with client.messages.stream(\n${kwargs}\n) as stream:\n    for text in stream.text_stream:\n        print(text, end="", flush=True)`
    : `message = client.messages.create(\n${kwargs}\n)\nprint(message.content[0].text)`
  return `import os\nfrom anthropic import Anthropic\n\nclient = Anthropic(base_url="${base}", api_key=os.environ.get("AIPROX_KEY", "none"))\n\n${use}\n`
}

/** A logged request body back into the editor (for "Open in Playground"). */
export function editorFromLog(
  endpoint: string,
  request: unknown,
): { editor: Partial<Editor>; model: string } {
  const r = (typeof request === 'object' && request !== null ? request : {}) as Record<
    string,
    unknown
  >
  const format: Format = endpoint.startsWith('/v1/messages') ? 'anthropic' : 'openai'
  let system = ''
  const turns: EditorTurn[] = []
  const text = (c: unknown): string =>
    typeof c === 'string'
      ? c
      : Array.isArray(c)
        ? c
            .map((p) =>
              typeof p === 'object' && p && (p as Record<string, unknown>).type === 'text'
                ? String((p as Record<string, unknown>).text)
                : '',
            )
            .join('')
        : ''
  if (format === 'anthropic') system = text(r.system)
  for (const m of Array.isArray(r.messages) ? r.messages : []) {
    const msg = m as Record<string, unknown>
    if (msg.role === 'system' || msg.role === 'developer')
      system = [system, text(msg.content)].filter(Boolean).join('\n')
    else if (msg.role === 'user' || msg.role === 'assistant')
      turns.push({ role: msg.role, content: text(msg.content) })
  }
  const num = (v: unknown) => (typeof v === 'number' ? v : undefined)
  const stop = Array.isArray(r.stop)
    ? r.stop.join(', ')
    : Array.isArray(r.stop_sequences)
      ? r.stop_sequences.join(', ')
      : typeof r.stop === 'string'
        ? r.stop
        : ''
  return {
    model: typeof r.model === 'string' ? r.model : '',
    editor: {
      format,
      system,
      turns: turns.length ? turns : [{ role: 'user', content: '' }],
      stream: r.stream === true,
      params: {
        temperature: num(r.temperature),
        top_p: num(r.top_p),
        max_tokens: num(r.max_tokens) ?? num(r.max_completion_tokens),
        seed: num(r.seed),
        stop,
        tools: r.tools ? JSON.stringify(r.tools, null, 2) : '',
        response_format: r.response_format ? JSON.stringify(r.response_format) : '',
      },
    },
  }
}
