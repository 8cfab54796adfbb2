/**
 * The admin's dashboard page (`streaming/templates/admin/streaming/exchange/dashboard.html`): draws each
 * `<canvas data-chart>` from the figures in `#dashboard-figures`. The numbers are in the page already, as a table per
 * chart for screen readers; this only draws them. No React: the page is the admin's.
 */
import {
  BarController,
  BarElement,
  CategoryScale,
  Chart,
  Legend,
  LinearScale,
  Tooltip,
} from 'chart.js';

import { chartConfigs } from './dashboard/charts.js';

Chart.register(BarController, BarElement, CategoryScale, LinearScale, Legend, Tooltip);

function draw() {
  const figures = JSON.parse(document.getElementById('dashboard-figures').textContent);
  const configs = chartConfigs(figures);
  const still = window.matchMedia('(prefers-reduced-motion: reduce)').matches;
  for (const canvas of document.querySelectorAll('canvas[data-chart]')) {
    const config = configs[canvas.dataset.chart];
    if (still) config.options.animation = false;
    new Chart(canvas, config);
  }
}

if (document.readyState === 'loading') {
  document.addEventListener('DOMContentLoaded', draw);
} else {
  draw();
}
