// The admin API's calls, one function each.
import { query, request } from './http'
import type {
  ConnectionTest,
  CreatedKey,
  Session,
  Key,
  KeyLimits,
  List,
  LogDetail,
  LogPage,
  Mapping,
  MappingInput,
  Provider,
  ProviderHealth,
  ProviderInput,
  SeriesPoint,
  Split,
  Usage,
} from './types'

export interface LogFilters {
  from?: number
  to?: number
  model?: string
  provider?: string
  status?: number
  error_kind?: string
  key?: string
  stream?: boolean
  source?: string
  min_latency_ms?: number
  q?: string
}

const enc = encodeURIComponent

export const admin = {
  session: () => request<Session>('GET', '/api/v1/session'),
  login: (body: { token?: string; code?: string }) =>
    request<{ authenticated: boolean }>('POST', '/api/v1/session', body),
  logout: () => request<void>('DELETE', '/api/v1/session'),

  logs: (f: LogFilters, cursor?: string, limit = 50, signal?: AbortSignal) =>
    request<LogPage>('GET', '/api/v1/logs' + query({ ...f, cursor, limit }), undefined, signal),
  log: (id: string) => request<LogDetail>('GET', `/api/v1/logs/${enc(id)}`),
  summary: (from: number, to: number) =>
    request<Usage>('GET', '/api/v1/stats/summary' + query({ from, to })),
  /** `percentiles: false`: counts, tokens and cost only (cheaper for the server). */
  series: (from: number, to: number, step_s: number, split: Split = 'none', percentiles = true) =>
    request<List<SeriesPoint>>(
      'GET',
      '/api/v1/stats/series' +
        query({ from, to, step_s, split, percentiles: percentiles ? undefined : false }),
    ),

  providers: () => request<List<Provider>>('GET', '/api/v1/providers'),
  providerHealth: () => request<ProviderHealth>('GET', '/api/v1/provider-health'),
  createProvider: (p: ProviderInput) => request<Provider>('POST', '/api/v1/providers', p),
  updateProvider: (name: string, p: ProviderInput) =>
    request<Provider>('PUT', `/api/v1/providers/${enc(name)}`, p),
  deleteProvider: (name: string) => request<void>('DELETE', `/api/v1/providers/${enc(name)}`),
  testProvider: (name: string) =>
    request<ConnectionTest>('POST', `/api/v1/providers/${enc(name)}/test`),

  mappings: () => request<List<Mapping>>('GET', '/api/v1/mappings'),
  createMapping: (m: MappingInput) => request<Mapping>('POST', '/api/v1/mappings', m),
  updateMapping: (alias: string, m: MappingInput) =>
    request<Mapping>('PUT', `/api/v1/mappings/${enc(alias)}`, m),
  deleteMapping: (alias: string) => request<void>('DELETE', `/api/v1/mappings/${enc(alias)}`),

  keys: () => request<List<Key>>('GET', '/api/v1/keys'),
  createKey: (name: string, limits: KeyLimits = {}) =>
    request<CreatedKey>('POST', '/api/v1/keys', { name, limits }),
  setKeyLimits: (id: string, limits: KeyLimits) =>
    request<Key>('PUT', `/api/v1/keys/${enc(id)}/limits`, limits),
  revokeKey: (id: string) => request<Key>('DELETE', `/api/v1/keys/${enc(id)}`),
}
