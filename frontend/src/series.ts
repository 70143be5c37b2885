// Rollup series points → what the charts and tables draw.
import type { SeriesPoint, Usage } from '@/api/types'

export type MetricName =
  | 'requests'
  | 'errors'
  | 'error_rate'
  | 'input_tokens'
  | 'output_tokens'
  | 'cost_usd'
  | 'latency_p50'
  | 'latency_p95'
  | 'latency_p99'
  | 'ttft_p50'
  | 'ttft_p95'

export function metric(u: Usage, m: MetricName): number | null {
  switch (m) {
    case 'error_rate':
      return u.requests ? u.errors / u.requests : null
    case 'latency_p50':
      return u.latency_ms.p50 ?? null
    case 'latency_p95':
      return u.latency_ms.p95 ?? null
    case 'latency_p99':
      return u.latency_ms.p99 ?? null
    case 'ttft_p50':
      return u.ttft_ms.p50 ?? null
    case 'ttft_p95':
      return u.ttft_ms.p95 ?? null
    default:
      return u[m]
  }
}

/**
 * Every bucket start from `from` to `to`, as the admin counts them (from `from`,
 * `step` apart), so gaps draw as zero, not as a line across.
 */
export function buckets(from: number, to: number, stepS: number): number[] {
  const step = stepS * 1000
  const out: number[] = []
  for (let t = from; t < to; t += step) out.push(t)
  return out
}

/** One line per group: `[bucket start, value]` at every bucket (absent buckets: 0 for counts, null for percentiles). */
export function lines(
  points: SeriesPoint[],
  times: number[],
  m: MetricName,
): Map<string, [number, number | null][]> {
  const counts = !m.includes('_p') && m !== 'error_rate'
  const byGroup = new Map<string, Map<number, SeriesPoint>>()
  for (const p of points) {
    const g = byGroup.get(p.group) ?? new Map<number, SeriesPoint>()
    g.set(p.start_ms, p)
    byGroup.set(p.group, g)
  }
  const out = new Map<string, [number, number | null][]>()
  for (const [group, at] of byGroup) {
    out.set(
      group,
      times.map((t) => {
        const p = at.get(t)
        return [t, p ? metric(p, m) : counts ? 0 : null]
      }),
    )
  }
  return out
}

/** Totals per group over the whole range, biggest first by `by`. */
export function ranked(
  points: SeriesPoint[],
  by: 'requests' | 'cost_usd',
): { group: string; requests: number; errors: number; cost_usd: number }[] {
  const totals = new Map<
    string,
    { group: string; requests: number; errors: number; cost_usd: number }
  >()
  for (const p of points) {
    const t = totals.get(p.group) ?? { group: p.group, requests: 0, errors: 0, cost_usd: 0 }
    t.requests += p.requests
    t.errors += p.errors
    t.cost_usd += p.cost_usd
    totals.set(p.group, t)
  }
  return [...totals.values()].sort((a, b) => b[by] - a[by])
}

/** The table under the charts, as CSV. */
export function toCsv(points: SeriesPoint[]): string {
  const head = [
    'bucket_start_utc',
    'group',
    'requests',
    'errors',
    'input_tokens',
    'output_tokens',
    'cost_usd',
    'latency_p50_ms',
    'latency_p95_ms',
    'latency_p99_ms',
    'ttft_p50_ms',
    'ttft_p95_ms',
  ]
  const cell = (v: unknown) => {
    const s = v === null || v === undefined ? '' : String(v)
    return /[",\n]/.test(s) ? '"' + s.replace(/"/g, '""') + '"' : s
  }
  const rows = points.map((p) =>
    [
      new Date(p.start_ms).toISOString(),
      p.group,
      p.requests,
      p.errors,
      p.input_tokens,
      p.output_tokens,
      p.cost_usd,
      p.latency_ms.p50,
      p.latency_ms.p95,
      p.latency_ms.p99,
      p.ttft_ms.p50,
      p.ttft_ms.p95,
    ]
      .map(cell)
      .join(','),
  )
  return [head.join(','), ...rows].join('\n') + '\n'
}
