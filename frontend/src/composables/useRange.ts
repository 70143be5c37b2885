import { computed, onUnmounted, ref } from 'vue'
import { useRoute } from 'vue-router'
import { aligned, rangeOf, type Range } from '@/range'

/**
 * The URL's range, re-read every `refreshMs` for presets (which end "now"), so
 * views that refresh themselves move with time.
 */
export function useRange(refreshMs = 15_000) {
  const route = useRoute()
  const now = ref(Date.now())
  const timer = setInterval(() => (now.value = Date.now()), refreshMs)
  onUnmounted(() => clearInterval(timer))
  const range = computed<Range>(() => aligned(rangeOf(route.query, now.value)))
  return { range, now }
}
