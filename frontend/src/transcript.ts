// A logged request and response, in either API's format, as one list of turns
// to draw: system, user, assistant and tool turns; tool calls with their results
// attached; images as media URLs; thinking kept apart; the error on its own.

export type Role = 'system' | 'user' | 'assistant' | 'tool'

export interface ToolCall {
  kind: 'tool_call'
  id: string
  name: string
  /** Pretty-printed JSON when the arguments parse, as sent otherwise. */
  arguments: string
  /** The tool result that answers this call, when the conversation has it. */
  result?: ToolResult
}

export interface ToolResult {
  kind: 'tool_result'
  callId: string
  text: string
  images: string[]
  isError: boolean
}

export type Part =
  | { kind: 'text'; text: string }
  | { kind: 'image'; src: string }
  | { kind: 'thinking'; text: string; redacted: boolean }
  | ToolCall
  | ToolResult
  | { kind: 'other'; json: string }

export interface Turn {
  role: Role
  parts: Part[]
  /** This turn is the answer (from the response body). */
  answer?: boolean
}

export interface TranscriptError {
  kind: string
  message: string
}

export interface Transcript {
  format: 'openai' | 'anthropic' | 'responses' | 'completions' | 'unknown'
  turns: Turn[]
  error?: TranscriptError
  stopReason?: string
}

type Obj = Record<string, unknown>

const isObj = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v)
const str = (v: unknown): string => (typeof v === 'string' ? v : '')

const MEDIA_PREFIX = 'aiprox-media://'

/** A logged image reference (`aiprox-media://<sha256>`) or URL, as something an `<img>` can load. */
export function mediaSrc(url: string): string {
  if (url.startsWith(MEDIA_PREFIX))
    return '/api/v1/media/' + encodeURIComponent(url.slice(MEDIA_PREFIX.length))
  return url
}

function pretty(args: unknown): string {
  if (typeof args === 'string') {
    try {
      return JSON.stringify(JSON.parse(args), null, 2)
    } catch {
      return args
    }
  }
  return JSON.stringify(args ?? {}, null, 2)
}

function openAiParts(content: unknown): Part[] {
  if (typeof content === 'string') return content ? [{ kind: 'text', text: content }] : []
  if (!Array.isArray(content)) return []
  return content.map((p): Part => {
    if (!isObj(p)) return { kind: 'other', json: JSON.stringify(p) }
    if (p.type === 'text') return { kind: 'text', text: str(p.text) }
    if (p.type === 'image_url') {
      const url = isObj(p.image_url) ? str(p.image_url.url) : str(p.image_url)
      return { kind: 'image', src: mediaSrc(url) }
    }
    return { kind: 'other', json: JSON.stringify(p, null, 2) }
  })
}

function openAiToolCalls(calls: unknown): ToolCall[] {
  if (!Array.isArray(calls)) return []
  return calls.filter(isObj).map((c) => {
    const f = isObj(c.function) ? c.function : {}
    return { kind: 'tool_call', id: str(c.id), name: str(f.name), arguments: pretty(f.arguments) }
  })
}

function openAiMessage(m: Obj, answer = false): Turn {
  const raw = str(m.role)
  const role: Role =
    raw === 'system' || raw === 'developer'
      ? 'system'
      : raw === 'tool'
        ? 'tool'
        : raw === 'assistant'
          ? 'assistant'
          : 'user'
  const parts: Part[] = []
  const reasoning = str(m.reasoning_content) || str(m.reasoning)
  if (reasoning) parts.push({ kind: 'thinking', text: reasoning, redacted: false })
  if (role === 'tool') {
    const content = openAiParts(m.content)
    parts.push({
      kind: 'tool_result',
      callId: str(m.tool_call_id),
      text: content.map((p) => (p.kind === 'text' ? p.text : '')).join(''),
      images: content.flatMap((p) => (p.kind === 'image' ? [p.src] : [])),
      isError: false,
    })
  } else {
    parts.push(...openAiParts(m.content))
  }
  if (str(m.refusal)) parts.push({ kind: 'text', text: str(m.refusal) })
  parts.push(...openAiToolCalls(m.tool_calls))
  return { role, parts, answer }
}

function anthropicBlocks(content: unknown): Part[] {
  if (typeof content === 'string') return content ? [{ kind: 'text', text: content }] : []
  if (!Array.isArray(content)) return []
  return content.map((b): Part => {
    if (!isObj(b)) return { kind: 'other', json: JSON.stringify(b) }
    switch (b.type) {
      case 'text':
        return { kind: 'text', text: str(b.text) }
      case 'image': {
        const s = isObj(b.source) ? b.source : {}
        const src =
          s.type === 'url'
            ? str(s.url)
            : s.type === 'base64'
              ? `data:${str(s.media_type)};base64,${str(s.data)}`
              : ''
        // A logged image's data is the media reference.
        return {
          kind: 'image',
          src: mediaSrc(str(s.data).startsWith(MEDIA_PREFIX) ? str(s.data) : src),
        }
      }
      case 'thinking':
        return { kind: 'thinking', text: str(b.thinking), redacted: false }
      case 'redacted_thinking':
        return { kind: 'thinking', text: '', redacted: true }
      case 'tool_use':
      case 'server_tool_use':
        return { kind: 'tool_call', id: str(b.id), name: str(b.name), arguments: pretty(b.input) }
      case 'tool_result': {
        const inner = anthropicBlocks(b.content)
        return {
          kind: 'tool_result',
          callId: str(b.tool_use_id),
          text: inner.map((p) => (p.kind === 'text' ? p.text : '')).join(''),
          images: inner.flatMap((p) => (p.kind === 'image' ? [p.src] : [])),
          isError: b.is_error === true,
        }
      }
      default:
        return { kind: 'other', json: JSON.stringify(b, null, 2) }
    }
  })
}

function anthropicTurn(m: Obj, answer = false): Turn {
  const raw = str(m.role)
  const role: Role = raw === 'assistant' ? 'assistant' : raw === 'system' ? 'system' : 'user'
  const parts = anthropicBlocks(m.content)
  // A user turn made only of tool results is the tools' turn.
  const onlyResults = parts.length > 0 && parts.every((p) => p.kind === 'tool_result')
  return { role: onlyResults ? 'tool' : role, parts, answer }
}

/** Tool results move into the call they answer; the turns left empty go. */
function attachResults(turns: Turn[]): Turn[] {
  const calls = new Map<string, ToolCall>()
  for (const t of turns)
    for (const p of t.parts) if (p.kind === 'tool_call' && p.id) calls.set(p.id, p)
  const out: Turn[] = []
  for (const t of turns) {
    const parts = t.parts.filter((p) => {
      if (p.kind !== 'tool_result') return true
      const call = calls.get(p.callId)
      if (!call) return true
      call.result = p
      return false
    })
    if (parts.length > 0 || t.answer) out.push({ ...t, parts })
  }
  return out
}

function errorOf(response: unknown): TranscriptError | undefined {
  if (!isObj(response) || !isObj(response.error)) return undefined
  const e = response.error
  return { kind: str(e.type) || str(e.code), message: str(e.message) }
}

/** One item of a Responses `input` or `output` as turns (a message, a call, its output, reasoning). */
function responsesItem(item: unknown, answer = false): Turn | undefined {
  if (!isObj(item)) return undefined
  const type = str(item.type) || (item.role ? 'message' : '')
  switch (type) {
    case 'message': {
      const raw = str(item.role)
      const role: Role =
        raw === 'system' || raw === 'developer'
          ? 'system'
          : raw === 'assistant'
            ? 'assistant'
            : 'user'
      const content = item.content
      const parts: Part[] =
        typeof content === 'string'
          ? content
            ? [{ kind: 'text', text: content }]
            : []
          : (Array.isArray(content) ? content : []).map((p): Part => {
              if (!isObj(p)) return { kind: 'other', json: JSON.stringify(p) }
              if (p.type === 'input_text' || p.type === 'output_text')
                return { kind: 'text', text: str(p.text) }
              if (p.type === 'refusal') return { kind: 'text', text: str(p.refusal) }
              if (p.type === 'input_image')
                return { kind: 'image', src: mediaSrc(str(p.image_url)) }
              return { kind: 'other', json: JSON.stringify(p, null, 2) }
            })
      return { role, parts, answer }
    }
    case 'function_call':
      return {
        role: 'assistant',
        parts: [
          {
            kind: 'tool_call',
            id: str(item.call_id),
            name: str(item.name),
            arguments: pretty(item.arguments),
          },
        ],
        answer,
      }
    case 'function_call_output':
      return {
        role: 'tool',
        parts: [
          {
            kind: 'tool_result',
            callId: str(item.call_id),
            text: typeof item.output === 'string' ? item.output : JSON.stringify(item.output),
            images: [],
            isError: false,
          },
        ],
      }
    case 'reasoning': {
      const summary = Array.isArray(item.summary) ? item.summary : []
      const text = summary.map((p) => (isObj(p) ? str(p.text) : '')).join('\n')
      return { role: 'assistant', parts: [{ kind: 'thinking', text, redacted: !text }], answer }
    }
    default:
      return {
        role: answer ? 'assistant' : 'user',
        parts: [{ kind: 'other', json: JSON.stringify(item, null, 2) }],
        answer,
      }
  }
}

/** The answer's turns merged into one: reasoning, text and calls of one response. */
function mergeAnswer(turns: Turn[]): Turn[] {
  const answer = turns.filter((t) => t.answer)
  if (answer.length < 2) return turns
  return [
    ...turns.filter((t) => !t.answer),
    { role: 'assistant', parts: answer.flatMap((t) => t.parts), answer: true },
  ]
}

export function detectFormat(endpoint: string, request: unknown): Transcript['format'] {
  if (endpoint.includes('/responses')) return 'responses'
  if (endpoint === '/v1/completions') return 'completions'
  if (endpoint.includes('/messages')) return 'anthropic'
  if (endpoint.includes('/chat/completions')) return 'openai'
  if (isObj(request) && Array.isArray(request.messages)) {
    return 'system' in request || 'max_tokens' in request ? 'anthropic' : 'openai'
  }
  return 'unknown'
}

export function transcript(endpoint: string, request: unknown, response: unknown): Transcript {
  const format = detectFormat(endpoint, request)
  const turns: Turn[] = []
  let stopReason: string | undefined
  const req = isObj(request) ? request : {}
  const res = isObj(response) ? response : {}
  if (format === 'openai') {
    for (const m of Array.isArray(req.messages) ? req.messages : [])
      if (isObj(m)) turns.push(openAiMessage(m))
    const choice = Array.isArray(res.choices) && isObj(res.choices[0]) ? res.choices[0] : undefined
    if (choice && isObj(choice.message)) turns.push(openAiMessage(choice.message, true))
    if (choice) stopReason = str(choice.finish_reason) || undefined
  } else if (format === 'anthropic') {
    const system = anthropicBlocks(req.system)
    if (system.length) turns.push({ role: 'system', parts: system })
    for (const m of Array.isArray(req.messages) ? req.messages : [])
      if (isObj(m)) turns.push(anthropicTurn(m))
    if (Array.isArray(res.content))
      turns.push(anthropicTurn({ role: 'assistant', content: res.content }, true))
    stopReason = str(res.stop_reason) || undefined
  } else if (format === 'responses') {
    if (str(req.instructions))
      turns.push({ role: 'system', parts: [{ kind: 'text', text: str(req.instructions) }] })
    const input = typeof req.input === 'string' ? [{ role: 'user', content: req.input }] : req.input
    for (const item of Array.isArray(input) ? input : []) {
      const turn = responsesItem(item)
      if (turn) turns.push(turn)
    }
    const answer: Turn[] = []
    for (const item of Array.isArray(res.output) ? res.output : []) {
      const turn = responsesItem(item, true)
      if (turn) answer.push(turn)
    }
    turns.push(...mergeAnswer(answer))
    const details = isObj(res.incomplete_details) ? str(res.incomplete_details.reason) : ''
    stopReason = details || str(res.status) || undefined
  } else if (format === 'completions') {
    const prompt = Array.isArray(req.prompt) ? req.prompt.map(str).join('\n') : str(req.prompt)
    if (prompt) turns.push({ role: 'user', parts: [{ kind: 'text', text: prompt }] })
    const choice = Array.isArray(res.choices) && isObj(res.choices[0]) ? res.choices[0] : undefined
    if (choice) {
      turns.push({
        role: 'assistant',
        parts: [{ kind: 'text', text: str(choice.text) }],
        answer: true,
      })
      stopReason = str(choice.finish_reason) || undefined
    }
  }
  return { format, turns: attachResults(turns), error: errorOf(response), stopReason }
}
