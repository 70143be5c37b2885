// The one way the UI talks to the admin API: same origin, the session cookie,
// and a header that a cross-site form cannot send (the admin refuses writes by
// cookie without it).

export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    /** The input field the message names, when it names one. */
    readonly field?: string,
  ) {
    super(message)
    this.name = 'ApiError'
  }

  /** The API could not be reached at all (status 0). */
  get unreachable(): boolean {
    return this.status === 0
  }
}

export const CSRF_HEADER = 'x-aiprox-csrf'

/** Which input field an admin error message is about: `base_url: relative URL…` → `base_url`. */
export function fieldOf(message: string): string | undefined {
  const m = /^([a-z_][a-z0-9_.[\]]*):\s/.exec(message)
  return m?.[1]?.replace(/\[\d+\]/g, '').split('.')[0]
}

let onUnauthorized: () => void = () => {}

/** Called on every 401: the session ended. */
export function whenUnauthorized(handler: () => void): void {
  onUnauthorized = handler
}

export async function request<T>(
  method: string,
  path: string,
  body?: unknown,
  signal?: AbortSignal,
): Promise<T> {
  let response: Response
  try {
    response = await fetch(path, {
      method,
      credentials: 'same-origin',
      headers: {
        accept: 'application/json',
        [CSRF_HEADER]: '1',
        ...(body === undefined ? {} : { 'content-type': 'application/json' }),
      },
      body: body === undefined ? undefined : JSON.stringify(body),
      signal,
    })
  } catch (e) {
    if (e instanceof DOMException && e.name === 'AbortError') throw e
    throw new ApiError(0, 'unreachable', String(e))
  }
  if (response.status === 204) return undefined as T
  const text = await response.text()
  let json: unknown = undefined
  try {
    json = text ? JSON.parse(text) : undefined
  } catch {
    json = undefined
  }
  if (!response.ok) {
    const err = (
      json as { error?: { code?: string; message?: string; field?: string } } | undefined
    )?.error
    const message = err?.message ?? (text || response.statusText)
    if (response.status === 401) onUnauthorized()
    throw new ApiError(
      response.status,
      err?.code ?? 'http_' + response.status,
      message,
      err?.field ?? fieldOf(message),
    )
  }
  return json as T
}

/** `?a=1&b=x` from the defined values. */
export function query(
  params: Record<string, string | number | boolean | undefined | null>,
): string {
  const q = new URLSearchParams()
  for (const [k, v] of Object.entries(params)) {
    if (v !== undefined && v !== null && v !== '') q.set(k, String(v))
  }
  const s = q.toString()
  return s ? '?' + s : ''
}
