// The only place ECharts parts are registered: just the ones the views draw.
import { use } from 'echarts/core'
import { BarChart, LineChart } from 'echarts/charts'
import { GridComponent, LegendPlainComponent, TooltipComponent } from 'echarts/components'
import { CanvasRenderer } from 'echarts/renderers'

use([LineChart, BarChart, GridComponent, TooltipComponent, LegendPlainComponent, CanvasRenderer])

/** Off in tests (stable screenshots); `?animation=0` or a `navigator.webdriver` browser. */
export const animation = !(typeof navigator !== 'undefined' && navigator.webdriver)
