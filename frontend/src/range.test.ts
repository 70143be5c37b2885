import { describe, expect, it } from 'vitest'
import { onClock, previous, rangeOf, stepFor } from './range'

describe('the range in the URL', () => {
  const now = Date.UTC(2026, 11, 1, 12, 0, 0)
  it('reads presets, ending now', () => {
    expect(rangeOf({ range: '1h' }, now)).toEqual({ from: now - 3_600_000, to: now, preset: '1h' })
  })
  it('reads a custom range and falls back to 24h on nonsense', () => {
    expect(rangeOf({ from: '1000', to: '2000' }, now)).toEqual({ from: 1000, to: 2000 })
    expect(rangeOf({ from: '3000', to: '2000', range: 'x' }, now).preset).toBe('24h')
  })
  it('compares with the period before and picks buckets', () => {
    expect(previous({ from: 100, to: 300 })).toEqual({ from: -100, to: 100 })
    expect(stepFor({ from: 0, to: 3_600_000 })).toBe(60)
    expect(stepFor({ from: 0, to: 86_400_000 })).toBe(1800)
    expect(stepFor({ from: 0, to: 30 * 86_400_000 })).toBe(43200)
  })
  it('moves a chart back to the clock: a day of hourly bars starts on a whole hour', () => {
    const r = { from: Date.UTC(2026, 10, 30, 12, 17, 5), to: now }
    expect(stepFor(r, 30)).toBe(3600)
    expect(onClock(r, 3600)).toEqual({ from: Date.UTC(2026, 10, 30, 12, 0, 0), to: now })
    expect(onClock({ from: now, to: now + 1 }, 3600).from).toBe(now)
  })
})
