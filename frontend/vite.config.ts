import { fileURLToPath, URL } from 'node:url'
import vue from '@vitejs/plugin-vue'
import tailwindcss from '@tailwindcss/vite'
import { defineConfig } from 'vite'

// `npm run dev` proxies the API to an admin on AIPROX_ADMIN (default the one
// `aiprox all` starts), so the UI can be worked on with hot reload.
const admin = process.env.AIPROX_ADMIN ?? 'http://127.0.0.1:8081'

export default defineConfig({
  plugins: [vue(), tailwindcss()],
  resolve: { alias: { '@': fileURLToPath(new URL('./src', import.meta.url)) } },
  server: { proxy: { '/api': admin } },
  build: { chunkSizeWarningLimit: 800, reportCompressedSize: true },
  test: { environment: 'jsdom', include: ['src/**/*.test.ts'] },
})
