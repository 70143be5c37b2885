// Server-sent events from a fetch body: frames split anywhere by the network,
// joined back into `{event, data}` as the SSE format defines them.

export interface SseEvent {
  event: string
  data: string
}

export class SseParser {
  private buffer = ''

  /** Feed text as it arrives; returns the events completed by it. */
  push(text: string): SseEvent[] {
    this.buffer += text.replace(/\r\n?/g, '\n')
    const out: SseEvent[] = []
    let end: number
    while ((end = this.buffer.indexOf('\n\n')) >= 0) {
      const frame = this.buffer.slice(0, end)
      this.buffer = this.buffer.slice(end + 2)
      let event = 'message'
      const data: string[] = []
      for (const line of frame.split('\n')) {
        if (line.startsWith(':')) continue
        const colon = line.indexOf(':')
        const field = colon < 0 ? line : line.slice(0, colon)
        let value = colon < 0 ? '' : line.slice(colon + 1)
        if (value.startsWith(' ')) value = value.slice(1)
        if (field === 'event') event = value
        else if (field === 'data') data.push(value)
      }
      if (data.length) out.push({ event, data: data.join('\n') })
    }
    return out
  }
}
