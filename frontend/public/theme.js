// Before the first paint: no flash of the wrong theme (a file, not inline, so
// the admin's Content-Security-Policy can forbid inline scripts).
try {
  const t = localStorage.getItem('aiprox.theme')
  const dark = t ? t === 'dark' : matchMedia('(prefers-color-scheme: dark)').matches
  if (dark) document.documentElement.classList.add('dark')
} catch {
  // No storage: the system's theme applies once the app starts.
}
