import { defineStore } from 'pinia'
import { computed, ref, watchEffect } from 'vue'

export type ThemeChoice = 'system' | 'light' | 'dark'
const KEY = 'aiprox.theme'

/** Light or dark: follows the system until the toggle picks one (kept locally). */
export const useTheme = defineStore('theme', () => {
  const choice = ref<ThemeChoice>((localStorage.getItem(KEY) as ThemeChoice | null) ?? 'system')
  const media = window.matchMedia?.('(prefers-color-scheme: dark)')
  const systemDark = ref(media?.matches ?? false)
  media?.addEventListener?.('change', (e) => (systemDark.value = e.matches))
  const dark = computed(() =>
    choice.value === 'system' ? systemDark.value : choice.value === 'dark',
  )
  watchEffect(() => {
    document.documentElement.classList.toggle('dark', dark.value)
    if (choice.value === 'system') localStorage.removeItem(KEY)
    else localStorage.setItem(KEY, choice.value)
  })
  function toggle() {
    choice.value = dark.value ? 'light' : 'dark'
  }
  return { choice, dark, toggle }
})
