import { computed } from 'vue'
import { useTheme } from '@/stores/theme'

/** Chart colours for the current theme: the same series colours, axes and text that read on either. */
export function useChartTheme() {
  const theme = useTheme()
  return computed(() => {
    const dark = theme.dark
    const text = dark ? '#d4d4d8' : '#3f3f46'
    const line = dark ? '#3f3f46' : '#e4e4e7'
    return {
      backgroundColor: 'transparent',
      color: [
        '#6366f1',
        '#ef4444',
        '#10b981',
        '#f59e0b',
        '#3b82f6',
        '#ec4899',
        '#14b8a6',
        '#a855f7',
        '#84cc16',
        '#f97316',
      ],
      textStyle: { color: text },
      grid: { left: 48, right: 16, top: 32, bottom: 28 },
      tooltip: {
        trigger: 'axis' as const,
        backgroundColor: dark ? '#18181b' : '#ffffff',
        borderColor: line,
        textStyle: { color: text },
      },
      legend: { textStyle: { color: text }, top: 0 },
      axisLine: line,
      text,
    }
  })
}
