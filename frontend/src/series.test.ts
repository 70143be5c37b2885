import { describe, expect, it } from 'vitest'
import type { SeriesPoint } from '@/api/types'
import { buckets, lines, ranked, toCsv } from './series'

const point = (
  start_ms: number,
  group: string,
  requests: number,
  errors = 0,
  cost_usd = 0,
): SeriesPoint => ({
  start_ms,
  group,
  requests,
  errors,
  input_tokens: requests * 10,
  output_tokens: requests * 5,
  cost_usd,
  latency_ms: { p50: 100, p95: 200, p99: 300 },
  ttft_ms: { p50: null, p95: null, p99: null },
})

describe('series for the charts', () => {
  it('fills empty buckets with zero counts and null percentiles', () => {
    const times = buckets(0, 180_000, 60)
    expect(times).toEqual([0, 60_000, 120_000])
    expect(buckets(30_000, 150_000, 60)).toEqual([30_000, 90_000])
    const pts = [point(0, 'a', 3), point(120_000, 'a', 1)]
    expect(lines(pts, times, 'requests').get('a')).toEqual([
      [0, 3],
      [60_000, 0],
      [120_000, 1],
    ])
    expect(lines(pts, times, 'latency_p95').get('a')).toEqual([
      [0, 200],
      [60_000, null],
      [120_000, 200],
    ])
  })
  it('ranks groups and writes CSV with quoting', () => {
    const pts = [
      point(0, 'small', 1, 0, 0.5),
      point(0, 'big', 5, 1, 0.1),
      point(60_000, 'small', 1, 0, 0.5),
    ]
    expect(ranked(pts, 'requests').map((r) => r.group)).toEqual(['big', 'small'])
    expect(ranked(pts, 'cost_usd').map((r) => r.group)).toEqual(['small', 'big'])
    const csv = toCsv([point(0, 'a,b', 2)])
    expect(csv.split('\n')[1]).toBe('1970-01-01T00:00:00.000Z,"a,b",2,0,20,10,0,100,200,300,,')
  })
})
