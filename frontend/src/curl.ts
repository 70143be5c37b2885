// "Copy as curl" for a logged request: the exact body, the key as `$AIPROX_KEY`
// (never a real one), the gateway's URL as the admin reports it.

const shellQuote = (s: string) => "'" + s.replace(/'/g, `'\\''`) + "'"

export function curlFor(gatewayUrl: string, endpoint: string, body: unknown): string {
  const base = gatewayUrl.replace(/\/+$/, '')
  const auth = endpoint.startsWith('/v1/messages')
    ? 'x-api-key: $AIPROX_KEY'
    : 'authorization: Bearer $AIPROX_KEY'
  const json = typeof body === 'string' ? body : JSON.stringify(body)
  return [
    `curl ${base}${endpoint}`,
    `  -H 'content-type: application/json'`,
    // Double quotes: the shell fills in the key.
    `  -H "${auth}"`,
    `  -d ${shellQuote(json)}`,
  ].join(' \\\n')
}
