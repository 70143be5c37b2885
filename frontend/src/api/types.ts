// The admin API's bodies, as `/api/v1/openapi.json` describes them (its schemas
// of the same names). A field renamed there fails `api/types.test.ts`.

export interface ErrorBody {
  error: { code: string; message: string; field?: string }
}

export interface List<T> {
  data: T[]
}

export interface LogItem {
  request_id: string
  received_at_ms: number
  endpoint: string
  model: string
  provider: string
  upstream_model: string
  stream: boolean
  status: number
  error_kind: string
  input_tokens: number
  output_tokens: number
  cost_usd: number
  latency_ms: number
  ttft_ms: number
  key: string
  source: string
}

export interface LogPage {
  data: LogItem[]
  next_cursor?: string | null
}

export interface MediaLink {
  sha256: string
  url: string
}

/** One log whole: everything the list shows, and more. */
/** An upstream call that failed before another was made (a retry or fallback). */
export interface FailedAttempt {
  provider: string
  upstream_model: string
  /** 0 when the upstream gave no status (unreachable, timed out). */
  status: number
  error_kind: string
  latency_ms: number
  /** The key of the provider's pool that made it, from 1; 0: no key. */
  key?: number
}

export interface LogDetail extends LogItem {
  error_message: string
  cached_tokens: number
  /** Input tokens written to the provider's prompt cache (part of the input). */
  cache_write_tokens: number
  upstream_latency_ms: number
  request: unknown
  response: unknown
  media: MediaLink[]
  failed_attempts: FailedAttempt[]
  /** Built-in tools (`web_search`, `namespace`, …) the provider could not run, left out of the upstream request, in request order. */
  omitted_tools: string[]
}

export interface Percentiles {
  p50?: number | null
  p95?: number | null
  p99?: number | null
}

export interface Usage {
  requests: number
  errors: number
  input_tokens: number
  output_tokens: number
  cost_usd: number
  latency_ms: Percentiles
  ttft_ms: Percentiles
}

export interface SeriesPoint extends Usage {
  start_ms: number
  group: string
}

export type Split = 'none' | 'model' | 'provider' | 'key'

export interface Timeouts {
  connect_ms?: number | null
  first_byte_ms?: number | null
  idle_ms?: number | null
}

export interface Provider {
  name: string
  kind: string
  base_url?: string | null
  api_key_env?: string | null
  /** The stored key's last characters (`…abcd`). */
  api_key_masked?: string | null
  /** How many keys are stored (a pool holds several). */
  api_key_count: number
  has_api_key: boolean
  headers: Record<string, string>
  models: string[]
  anthropic_version?: string | null
  default_max_tokens?: number | null
  timeouts: Timeouts
  word_delay_ms?: number | null
  created_at_ms: number
  updated_at_ms: number
}

export interface ProviderInput {
  name: string
  kind: string
  base_url?: string | null
  /** Write-only. On update: absent keeps the stored key, empty removes it. */
  api_key?: string
  /** Write-only, instead of `api_key`: a pool of keys used in turn. */
  api_keys?: string[]
  api_key_env?: string | null
  headers?: Record<string, string>
  models?: string[]
  anthropic_version?: string | null
  default_max_tokens?: number | null
}

export interface Target {
  provider: string
  model: string
  /** Share of first calls under `weighted`; 0 = a backup. */
  weight?: number
  /** How long a call to it may take before the next target takes over. */
  timeout_ms?: number | null
}

export type Strategy = 'fallback' | 'weighted' | 'least_latency' | 'least_busy'

export const STRATEGIES: Strategy[] = ['fallback', 'weighted', 'least_latency', 'least_busy']

export interface Mapping {
  alias: string
  targets: Target[]
  strategy: Strategy
  created_at_ms: number
  updated_at_ms: number
}

export interface MappingInput {
  alias: string
  targets: Target[]
  strategy?: Strategy
}

export type BudgetPeriod = 'day' | 'month' | 'total'

export interface Budget {
  usd: number
  period: BudgetPeriod
}

/** What a client key may do; an absent limit is no limit. */
export interface KeyLimits {
  requests_per_minute?: number
  tokens_per_minute?: number
  max_concurrent?: number
  models?: string[]
  expires_at_ms?: number
  budget?: Budget
}

export interface Key {
  id: string
  name: string
  prefix: string
  created_at_ms: number
  last_used_at_ms?: number | null
  revoked_at_ms?: number | null
  limits: KeyLimits
  /** With a budget: the logged spend of its current period. */
  spend_usd?: number | null
}

export interface CreatedKey {
  key: Key
  /** The only time it is shown. */
  secret: string
}

export interface ConnectionTest {
  ok: boolean
  latency_ms: number
  status?: number | null
  message: string
  models: string[]
}

export interface Session {
  authenticated: boolean
  /** Where clients reach the gateway, for snippets. */
  gateway_url?: string
}

/** Every target's health across the gateways heard from in the last 30 s. */
export interface ProviderHealth {
  gateways: number
  targets: TargetState[]
  resting_keys: KeyState[]
}

export interface TargetState {
  provider: string
  model: string
  status: 'healthy' | 'ejected' | 'partly_ejected'
  reported_by: number
  ejected_on: number
  ejected_until_ms?: number | null
  failures_in_a_row: number
  in_flight: number
  latency_ms?: number | null
}

export interface KeyState {
  provider: string
  key: number
  masked?: string | null
  resting_on: number
  until_ms: number
}
