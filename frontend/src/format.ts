// How numbers and times read everywhere in the UI: 1.2k, 3.4M, $0.0031, 812 ms,
// 1.3 s; local times with the UTC time for a title.

export function compact(n: number | null | undefined): string {
  if (n === null || n === undefined || Number.isNaN(n)) return '–'
  const abs = Math.abs(n)
  const units: [number, string][] = [
    [1e9, 'B'],
    [1e6, 'M'],
    [1e3, 'k'],
  ]
  for (const [size, unit] of units) {
    if (abs >= size) {
      const v = n / size
      return (Math.abs(v) >= 100 ? v.toFixed(0) : v.toFixed(1).replace(/\.0$/, '')) + unit
    }
  }
  return Number.isInteger(n) ? String(n) : n.toFixed(1)
}

export function usd(n: number | null | undefined): string {
  if (n === null || n === undefined || Number.isNaN(n)) return '–'
  if (n === 0) return '$0'
  const abs = Math.abs(n)
  if (abs >= 100) return '$' + n.toFixed(0)
  if (abs >= 1) return '$' + n.toFixed(2)
  // Two significant digits for small amounts: $0.0031.
  return '$' + n.toPrecision(2).replace(/(\.\d*?)0+$/, '$1')
}

export function duration(ms: number | null | undefined): string {
  if (ms === null || ms === undefined || Number.isNaN(ms)) return '–'
  if (ms < 1) return ms === 0 ? '0 ms' : '<1 ms'
  if (ms < 1000) return Math.round(ms) + ' ms'
  if (ms < 60_000) return (ms / 1000).toFixed(1).replace(/\.0$/, '') + ' s'
  const m = Math.floor(ms / 60_000)
  const s = Math.round((ms % 60_000) / 1000)
  return `${m} min ${s} s`
}

export function percent(ratio: number | null | undefined): string {
  if (ratio === null || ratio === undefined || !Number.isFinite(ratio)) return '–'
  const p = ratio * 100
  return (p !== 0 && Math.abs(p) < 0.1 ? p.toFixed(2) : p.toFixed(1).replace(/\.0$/, '')) + '%'
}

const pad = (n: number) => String(n).padStart(2, '0')

/** `2026-12-01 13:04:05` in local time. */
export function localTime(ms: number): string {
  const d = new Date(ms)
  return (
    `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ` +
    `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`
  )
}

/** `2026-12-01 12:04:05 UTC`, for a title. */
export function utcTime(ms: number): string {
  return new Date(ms)
    .toISOString()
    .replace('T', ' ')
    .replace(/\.\d+Z$/, ' UTC')
}

/** "2 min ago", for lists. */
export function relative(ms: number, now = Date.now(), locale = 'en'): string {
  const s = Math.round((ms - now) / 1000)
  const rtf = new Intl.RelativeTimeFormat(locale, { numeric: 'auto' })
  const abs = Math.abs(s)
  if (abs < 60) return rtf.format(s, 'second')
  if (abs < 3600) return rtf.format(Math.round(s / 60), 'minute')
  if (abs < 86400) return rtf.format(Math.round(s / 3600), 'hour')
  return rtf.format(Math.round(s / 86400), 'day')
}

/** Change against the previous period, as a ratio; undefined when there was nothing before. */
export function change(now: number, before: number): number | undefined {
  if (!before) return undefined
  return (now - before) / before
}
