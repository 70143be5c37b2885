import { defineStore } from 'pinia'
import { ref } from 'vue'
import { admin } from '@/api/admin'
import { ApiError } from '@/api/http'

/** Whether this browser holds an admin session (an HttpOnly cookie the page never sees). */
export const useSession = defineStore('session', () => {
  const authenticated = ref<boolean | undefined>(undefined)
  const unreachable = ref(false)

  async function check(): Promise<boolean> {
    try {
      authenticated.value = (await admin.session()).authenticated
      unreachable.value = false
    } catch (e) {
      unreachable.value = e instanceof ApiError && e.unreachable
      authenticated.value = false
    }
    return authenticated.value
  }

  /** With the one-time code of the start-up link, or the admin token. */
  async function login(credentials: { code?: string; token?: string }): Promise<void> {
    await admin.login(credentials)
    authenticated.value = true
  }

  async function logout(): Promise<void> {
    try {
      await admin.logout()
    } finally {
      authenticated.value = false
    }
  }

  return { authenticated, unreachable, check, login, logout }
})
