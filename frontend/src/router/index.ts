import { createRouter, createWebHistory } from 'vue-router'
import { whenUnauthorized } from '@/api/http'
import { useSession } from '@/stores/session'

export const router = createRouter({
  history: createWebHistory(),
  routes: [
    { path: '/', redirect: '/dashboard' },
    {
      path: '/login',
      name: 'login',
      component: () => import('@/views/LoginView.vue'),
      meta: { public: true },
    },
    { path: '/dashboard', name: 'dashboard', component: () => import('@/views/DashboardView.vue') },
    { path: '/analytics', name: 'analytics', component: () => import('@/views/AnalyticsView.vue') },
    { path: '/logs', name: 'logs', component: () => import('@/views/LogsView.vue') },
    {
      path: '/playground',
      name: 'playground',
      component: () => import('@/views/PlaygroundView.vue'),
    },
    { path: '/providers', name: 'providers', component: () => import('@/views/ProvidersView.vue') },
    { path: '/mappings', name: 'mappings', component: () => import('@/views/MappingsView.vue') },
    { path: '/keys', name: 'keys', component: () => import('@/views/KeysView.vue') },
    { path: '/:rest(.*)*', name: 'not-found', component: () => import('@/views/NotFoundView.vue') },
  ],
})

router.beforeEach(async (to) => {
  if (to.meta.public) return true
  const session = useSession()
  if (session.authenticated === undefined) await session.check()
  if (session.authenticated || session.unreachable) return true
  return { name: 'login', query: { next: to.fullPath } }
})

whenUnauthorized(() => {
  const session = useSession()
  session.authenticated = false
  if (router.currentRoute.value.name !== 'login') {
    void router.push({ name: 'login', query: { next: router.currentRoute.value.fullPath } })
  }
})
