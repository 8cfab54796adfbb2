import react from '@vitejs/plugin-react';
import { defineConfig } from 'vite';

/**
 * Built files are served by Django: django-vite reads dist/.vite/manifest.json to find the hashed names of the
 * entry below, and STATICFILES_DIRS serves dist/ under STATIC_URL ("/static/").
 */
export default defineConfig({
  base: '/static/',
  plugins: [react()],
  build: {
    outDir: 'dist',
    emptyOutDir: true,
    manifest: true,
    rolldownOptions: {
      input: 'src/main.jsx',
    },
  },
  server: {
    // `npm run dev` with django-vite's dev_mode: Django's pages load modules from this server.
    port: 5173,
    strictPort: true,
    origin: 'http://localhost:5173',
  },
  test: {
    environment: 'jsdom',
    include: ['src/**/*.test.{js,jsx}'],
    setupFiles: ['src/test/setup.js'],
    restoreMocks: true,
  },
});
