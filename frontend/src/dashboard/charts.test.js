import { describe, expect, it } from 'vitest';

import { chartConfigs } from './charts.js';

const FIGURES = {
  per_day: [
    { day: '2026-11-30', exchanges: 2, prompt_tokens: 10, completion_tokens: 30 },
    { day: '2026-12-01', exchanges: 0, prompt_tokens: 0, completion_tokens: 0 },
  ],
  ttft: [{ model: 'm', answers: 3, p50: 200, p95: 290 }],
  errors: [{ code: 'upstream_error', exchanges: 1 }],
  clients: [{ client: 'user:1', user: 'ada', label: 'ada', tokens: 40, exchanges: 2 }],
  tools: [{ tool: 'clock', calls: 3, done: 2, failed: 1, stopped: 0 }],
};

describe('chartConfigs', () => {
  it('makes one bar chart per canvas, from the figures in their order', () => {
    const configs = chartConfigs(FIGURES);
    expect(Object.keys(configs)).toEqual(['exchanges', 'tokens', 'ttft', 'errors', 'clients', 'tools']);
    expect(configs.exchanges.data).toMatchObject({ labels: ['11-30', '12-01'], datasets: [{ data: [2, 0] }] });
    expect(configs.tokens.data.datasets.map((set) => set.data)).toEqual([[10, 0], [30, 0]]);
    expect(configs.tokens.options.scales.y.stacked).toBe(true);
    expect(configs.ttft.data.datasets.map((set) => set.data)).toEqual([[200], [290]]);
    expect(configs.clients.data.labels).toEqual(['ada']);
    expect(configs.tools.options.indexAxis).toBe('y');
    expect(configs.tools.data.datasets.map((set) => set.data)).toEqual([[2], [1], [0]]);
  });
});
