// The time range shared by Dashboard, Analytics and Logs, as the URL writes it:
// `?range=24h` (a preset ending now) or `?from=<ms>&to=<ms>` (custom).

export const PRESETS = ['15m', '1h', '6h', '24h', '7d', '30d'] as const
export type Preset = (typeof PRESETS)[number]
export const DEFAULT_PRESET: Preset = '24h'

const UNIT_MS: Record<string, number> = { m: 60_000, h: 3_600_000, d: 86_400_000 }

export function presetMs(p: string): number | undefined {
  const m = /^(\d+)([mhd])$/.exec(p)
  return m ? Number(m[1]) * UNIT_MS[m[2]!]! : undefined
}

export interface Range {
  from: number
  to: number
  /** The preset it came from, when it came from one. */
  preset?: string
}

type Query = Record<string, unknown>

const num = (v: unknown): number | undefined => {
  const n = typeof v === 'string' ? Number(v) : NaN
  return Number.isFinite(n) ? n : undefined
}

export function rangeOf(query: Query, now = Date.now()): Range {
  const from = num(query.from)
  const to = num(query.to)
  if (from !== undefined && to !== undefined && from < to) return { from, to }
  const preset =
    typeof query.range === 'string' && presetMs(query.range) ? query.range : DEFAULT_PRESET
  return { from: now - presetMs(preset)!, to: now, preset }
}

/** The same length just before: what the tiles compare against. */
export function previous(r: Range): Range {
  const len = r.to - r.from
  return { from: r.from - len, to: r.from }
}

const STEPS_S = [60, 300, 900, 1800, 3600, 3 * 3600, 6 * 3600, 12 * 3600, 86400]

/** A bucket width giving at most about `buckets` points (at least the rollups' minute). */
export function stepFor(r: Range, buckets = 60): number {
  const want = (r.to - r.from) / 1000 / buckets
  return STEPS_S.find((s) => s >= want) ?? 86400
}

/** Aligns a range to whole minutes, so repeated fetches hit the same rollup rows. */
export function aligned(r: Range): Range {
  const m = 60_000
  return { ...r, from: Math.floor(r.from / m) * m, to: Math.ceil(r.to / m) * m }
}

/**
 * The range with its start moved back to the clock's step (a multiple of
 * `stepS` since the epoch, in UTC): the charts' bars start at 14:00, not 14:17,
 * and on PostgreSQL their whole hours are read from the hourly rollups.
 */
export function onClock(r: Range, stepS: number): Range {
  const step = stepS * 1000
  return { ...r, from: Math.floor(r.from / step) * step }
}
