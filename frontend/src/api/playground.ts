// The Playground's calls to the gateway, through the admin (same origin, the
// session cookie): `/api/v1/playground/<gateway path>`. The admin forwards them
// marked as coming from the Playground; cancelling the fetch cancels upstream.
import { CSRF_HEADER } from './http'
import { SseParser } from '@/sse'

export const PLAYGROUND = '/api/v1/playground'

export interface Sent {
  status: number
  requestId: string | null
}

export async function models(clientKey: string): Promise<string[]> {
  const r = await fetch(PLAYGROUND + '/v1/models', {
    headers: headers(clientKey),
    credentials: 'same-origin',
  })
  if (!r.ok) throw new Error(`${r.status} ${await r.text()}`)
  const body = (await r.json()) as { data?: { id: string }[] }
  return (body.data ?? []).map((m) => m.id)
}

function headers(clientKey: string): Record<string, string> {
  return {
    'content-type': 'application/json',
    [CSRF_HEADER]: '1',
    ...(clientKey ? { 'x-aiprox-client-key': clientKey } : {}),
  }
}

/**
 * Sends a request; `onData` gets each stream event's data (or the whole body once
 * when not streamed, or an error body).
 */
export async function send(
  endpoint: string,
  body: Record<string, unknown>,
  clientKey: string,
  signal: AbortSignal,
  onData: (data: string, streamed: boolean) => void,
): Promise<Sent> {
  const r = await fetch(PLAYGROUND + endpoint, {
    method: 'POST',
    headers: headers(clientKey),
    credentials: 'same-origin',
    body: JSON.stringify(body),
    signal,
  })
  const sent = { status: r.status, requestId: r.headers.get('x-request-id') }
  const streamed = (r.headers.get('content-type') ?? '').startsWith('text/event-stream')
  if (!streamed || !r.body) {
    onData(await r.text(), false)
    return sent
  }
  const reader = r.body.pipeThrough(new TextDecoderStream()).getReader()
  const parser = new SseParser()
  for (;;) {
    const { value, done } = await reader.read()
    if (done) break
    for (const e of parser.push(value)) onData(e.data, true)
  }
  return sent
}
