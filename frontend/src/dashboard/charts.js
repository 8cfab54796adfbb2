/**
 * The dashboard's charts as Chart.js configurations, from the figures the admin view puts in the page
 * (`streaming/dashboard.py` says what each list holds). Pure: no DOM, no Chart.js instance, so it is tested alone.
 */

const BLUE = '#417690'; // the admin's own header colour
const ORANGE = '#e07a2e';
const RED = '#ba2121';
const GREY = '#888888';

function bar(labels, datasets, { horizontal = false, stacked = false } = {}) {
  const scales = { x: { stacked, beginAtZero: true }, y: { stacked, beginAtZero: true } };
  scales[horizontal ? 'x' : 'y'].ticks = { precision: 0 }; // counts and milliseconds: whole numbers on the axis
  return {
    type: 'bar',
    data: { labels, datasets },
    options: {
      indexAxis: horizontal ? 'y' : 'x',
      responsive: true,
      maintainAspectRatio: false,
      scales,
      plugins: { legend: { display: datasets.length > 1 } },
    },
  };
}

/** One configuration per chart name, as the canvases' `data-chart` attributes name them. */
export function chartConfigs(figures) {
  const days = figures.per_day.map((row) => row.day.slice(5)); // MM-DD: the year is the page's
  return {
    exchanges: bar(days, [
      { label: 'Exchanges', data: figures.per_day.map((row) => row.exchanges), backgroundColor: BLUE },
    ]),
    tokens: bar(
      days,
      [
        { label: 'Prompt tokens', data: figures.per_day.map((row) => row.prompt_tokens), backgroundColor: BLUE },
        {
          label: 'Completion tokens',
          data: figures.per_day.map((row) => row.completion_tokens),
          backgroundColor: ORANGE,
        },
      ],
      { stacked: true },
    ),
    ttft: bar(
      figures.ttft.map((row) => row.model),
      [
        { label: 'p50 (ms)', data: figures.ttft.map((row) => row.p50), backgroundColor: BLUE },
        { label: 'p95 (ms)', data: figures.ttft.map((row) => row.p95), backgroundColor: ORANGE },
      ],
    ),
    errors: bar(
      figures.errors.map((row) => row.code),
      [{ label: 'Exchanges', data: figures.errors.map((row) => row.exchanges), backgroundColor: RED }],
      { horizontal: true },
    ),
    clients: bar(
      figures.clients.map((row) => row.label),
      [{ label: 'Tokens', data: figures.clients.map((row) => row.tokens), backgroundColor: BLUE }],
      { horizontal: true },
    ),
    tools: bar(
      figures.tools.map((row) => row.tool),
      [
        { label: 'Done', data: figures.tools.map((row) => row.done), backgroundColor: BLUE },
        { label: 'Failed', data: figures.tools.map((row) => row.failed), backgroundColor: RED },
        { label: 'Stopped', data: figures.tools.map((row) => row.stopped), backgroundColor: GREY },
      ],
      { horizontal: true, stacked: true },
    ),
  };
}
