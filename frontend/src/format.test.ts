import { describe, expect, it } from 'vitest'
import { change, compact, duration, percent, usd, utcTime } from './format'

describe('numbers read as the brief says', () => {
  it('compacts counts', () => {
    expect(compact(999)).toBe('999')
    expect(compact(1234)).toBe('1.2k')
    expect(compact(3_400_000)).toBe('3.4M')
    expect(compact(250_000)).toBe('250k')
    expect(compact(undefined)).toBe('–')
  })
  it('prices small amounts with two significant digits', () => {
    expect(usd(0.0031)).toBe('$0.0031')
    expect(usd(0.00312)).toBe('$0.0031')
    expect(usd(12.5)).toBe('$12.50')
    expect(usd(0)).toBe('$0')
  })
  it('reads durations in ms, then seconds', () => {
    expect(duration(812)).toBe('812 ms')
    expect(duration(1300)).toBe('1.3 s')
    expect(duration(0.4)).toBe('<1 ms')
    expect(duration(125_000)).toBe('2 min 5 s')
  })
  it('writes percentages and changes', () => {
    expect(percent(0.125)).toBe('12.5%')
    expect(percent(0.0004)).toBe('0.04%')
    expect(change(150, 100)).toBe(0.5)
    expect(change(5, 0)).toBeUndefined()
  })
  it('gives UTC for titles', () => {
    expect(utcTime(Date.UTC(2026, 11, 1, 12, 4, 5))).toBe('2026-12-01 12:04:05 UTC')
  })
})
