// Every text exists in both languages: a key missing in either fails here.
import { describe, expect, it } from 'vitest'
import en from './en.json'
import zhCN from './zh-CN.json'

function keys(o: object, prefix = ''): string[] {
  return Object.entries(o).flatMap(([k, v]) =>
    typeof v === 'object' && v !== null ? keys(v, prefix + k + '.') : [prefix + k],
  )
}

describe('translations', () => {
  it('have the same keys in English and Simplified Chinese', () => {
    expect(keys(zhCN).sort()).toEqual(keys(en).sort())
  })
  it('have no empty text', () => {
    for (const [name, messages] of Object.entries({ en, zhCN })) {
      const empty = keys(messages).filter((k) => {
        const v = k
          .split('.')
          .reduce<unknown>((o, p) => (o as Record<string, unknown>)[p], messages)
        return typeof v !== 'string' || v.trim() === ''
      })
      expect(empty, name).toEqual([])
    }
  })
})
