import { ref, type Ref } from 'vue'

/** A list fetched whole (providers, mappings, keys), with its loading and error states. */
export function useList<T>(fetch: () => Promise<{ data: T[] }>) {
  const items = ref([]) as Ref<T[]>
  const loading = ref(true)
  const error = ref<unknown>(null)
  async function reload() {
    loading.value = true
    try {
      items.value = (await fetch()).data
      error.value = null
    } catch (e) {
      error.value = e
    } finally {
      loading.value = false
    }
  }
  void reload()
  return { items, loading, error, reload }
}
