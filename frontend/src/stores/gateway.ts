import { defineStore } from 'pinia'
import { ref } from 'vue'
import { admin } from '@/api/admin'

/** Where clients reach the gateway (for curl and code snippets), as the admin reports it. */
export const useGatewayInfo = defineStore('gateway', () => {
  const url = ref('http://127.0.0.1:8080')
  let loaded = false
  async function load() {
    if (loaded) return
    try {
      const s = await admin.session()
      if (s.gateway_url) url.value = s.gateway_url
      loaded = true
    } catch {
      // Keep the default; the views show their own errors.
    }
  }
  return { url, load }
})
