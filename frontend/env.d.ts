/// <reference types="vite/client" />

// ECharts ships its locale objects without types.
declare module 'echarts/i18n/langZH-obj.js' {
  const locale: Parameters<typeof import('echarts/core').registerLocale>[1]
  export default locale
}
