// The only place ECharts parts are registered: just the ones the views draw.
import { registerLocale, use } from 'echarts/core'
import langZH from 'echarts/i18n/langZH-obj.js'
import { BarChart, LineChart } from 'echarts/charts'
import { GridComponent, LegendPlainComponent, TooltipComponent } from 'echarts/components'
import { CanvasRenderer } from 'echarts/renderers'

// Chinese month and weekday names on time axes when the UI is in Chinese.
registerLocale('ZH', langZH)

use([LineChart, BarChart, GridComponent, TooltipComponent, LegendPlainComponent, CanvasRenderer])

/** Off in tests (stable screenshots); `?animation=0` or a `navigator.webdriver` browser. */
export const animation = !(typeof navigator !== 'undefined' && navigator.webdriver)

/** ECharts' locale for the UI's. */
export const chartLocale = (uiLocale: string): string => (uiLocale.startsWith('zh') ? 'ZH' : 'EN')
