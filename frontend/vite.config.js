import react from '@vitejs/plugin-react';
import { defineConfig } from 'vite';

/**
 * The build is the `streaming` app's static files: `../streaming/static/streaming/`, shipped in the Python package.
 * Django finds them like any app's static files; the app's template tag (`streaming/templatetags/streaming_assets.py`)
 * reads `.vite/manifest.json` there for the hashed names of the entries below.
 *
 * `base: './'` makes every URL inside the bundle relative (the CSS's fonts, any chunk a script imports), so the
 * bundle works under whatever STATIC_URL a host project has, and Django's manifest storage can hash it further.
 */
export default defineConfig({
  base: './',
  plugins: [react()],
  build: {
    outDir: '../streaming/static/streaming',
    emptyOutDir: true, // outside this directory, Vite empties it only when told: it holds nothing but the build
    manifest: true,
    rolldownOptions: {
      // The chat page, and the admin's dashboard (`{% streaming_assets "src/dashboard.js" %}`).
      input: ['src/main.jsx', 'src/dashboard.js'],
    },
  },
  server: {
    // `npm run dev` with STREAMING_VITE_DEV_SERVER = "http://localhost:5173": Django's pages load modules from here.
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
