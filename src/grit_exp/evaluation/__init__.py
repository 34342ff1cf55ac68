"""Evaluation: greedy rollouts or replayed completions -> per-sample scores -> metrics.json,
samples.jsonl, pictures and report.html (the paper's metrics, deduplication and conventions).

Modules: `items` (reading eval / replay rows, deduplication), `samples` (per-sample scores),
`aggregate` (per-dataset metrics), `consistency` (the paper's cross-modal correlation), `pictures`,
`html_report`, `settings` (options, config checks), `runner` (sharding, gathering, writing; the entry
points `run_evaluation`, `evaluate_model`, `evaluate_replay`). Nothing is imported here, so that
importing one module stays light.
"""
