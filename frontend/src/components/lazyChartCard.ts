// ChartCard loaded after the first paint (ECharts is most of the JavaScript): the
// numbers show first, and a placeholder of the card's size holds its place.
import { defineAsyncComponent } from 'vue'
import ChartCardPlaceholder from './ChartCardPlaceholder.vue'

export const LazyChartCard = defineAsyncComponent({
  loader: () => import('./ChartCard.vue'),
  loadingComponent: ChartCardPlaceholder,
  delay: 0,
})
