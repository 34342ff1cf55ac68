"""Zoom rollouts: grit-exp's in-place continuation vs a re-prefill-every-turn loop, on identical work.

`in_place` is grit-exp's zoom rollout (`rollout/decode.py` with a `ZoomSession`): a row that closes a zoom call
gets its tool turn (the crop through the processor and the vision tower, the turn's tokens) written into its
KV cache and resumes at once; the G completions of a prompt share its first prefill, finished rows drop out.
`reprefill` is what multi-turn loops without KV reuse do (TRL 1.16's `_tool_call_loop`, for one, generates
each turn from the whole conversation's ids): every turn is a fresh generate call over the whole conversation
so far (prompt, model turns, tool turns; all its images through the vision tower again), batched over the rows;
each turn waits for the slowest row of the one before. It is built from the same parts (the same decode loop
for each turn, the same `ZoomSession.respond` for the tool turns, the same stop rule), so the ratio measures
KV reuse across turns and nothing else.

Why not TRL's GRPOTrainer itself (read in TRL 1.16's source): its tool loop can put a tool's image into the
conversation, but not for this work. (1) GRPOTrainer refuses the Qwen2.5-VL chat template at construction:
the template renders no `tool_calls` / `tool` role (`supports_tool_calling` is False; the tiny model's
template is the real one's structure) and TRL knows no response schema for it (`add_response_schema` raises),
so another template would change every token. (2) A TRL tool call is a JSON `tool_calls` message that ends the
assistant turn and is answered by a `tool` message; a zoom call is a box mid-turn answered by a user turn
with the crop. (3) TRL samples from one global RNG over the batch: no per-completion seeds, so its tokens
cannot be made to equal another loop's. Hence the baseline inside grit-exp, as issue #20 allows.

The work (identical on both sides, checked): the zoom demo's task and crop policy (`experiment=zoom_demo`:
448 px scenes, native-resolution crops), the tiny Qwen2.5-VL (random weights), 8 prompts x G=4, up to 160
model-written tokens, `max_turns=2`. The model's tokens are sampled (T=1, top-k 50) with noise keyed by
(completion, model-written index) (`KeyedChoice`), so batch layout and turn boundaries change nothing; a plan
(`zoom_plan`, seeded per completion) makes completions call zoom 0, 1 or 2 times on the red square (then on a
3x wider box) and end at varied lengths, writing those tokens in place of the sampled ones, the same way on
both sides (random weights never call zoom on their own; a bench where no row zooms measures nothing). Two
plans: `staggered` (each call after 6-30 free tokens: rows call at different steps, as sampled completions do)
and `aligned` (every row's call i closes at the same token: the best case for the in-place loop, which runs
one tool-turn pass over the whole decode batch per step in which some row calls, and gives every row that
pass's columns, masked for the rows not calling). Every completion (model-written tokens and tool turns) and
every call must be equal in every process of both sides, else exit 1.

Each side runs in its own processes (A B B A ... over `--rounds`, so peak RSS does not mix and load drifts
over both alike): `--warmup` rollouts, then `--rollouts` timed ones. Reported per side: median wall s per
rollout call, completion tokens per second (model-written tokens / wall), peak RSS and its rise over the RSS
before the first rollout, turns, tool calls and crops, the prefill passes, the in-place loop's tool-turn
passes and the KV-cache columns each row ends with (its own conversation and the holes of other rows' turns).
Results: results/zoom_rollout.json (per plan, with the ratio of completion tokens per second).

Run: `python benchmarks/bench_zoom_rollout.py [--rounds 3 --rollouts 4 --calls staggered,aligned]` (~2.5 min
on 2 cores; BENCH_THREADS torch threads per process, default 1).
Left out: the update (`bench_grpo_vs_trl.py`), InternVL (same loop), vLLM, real width, GPUs.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import torch

sys.path.insert(0, str(Path(__file__).parent))
from bench_grpo_vs_trl import abba, peak_rss_mb  # noqa: E402

log = logging.getLogger("bench")
RESULTS = Path(__file__).parent / "results"
SIDES = ("in_place", "reprefill")
PLANS = ("staggered", "aligned")
ALIGNED = (40, 100)  # `aligned` plans: model-written tokens up to the end of call 1, call 2
SEED = 0


def compose(prompts: int, max_new: int) -> Any:
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir

    from grit_exp.config import TrainConfig, validate_train
    from grit_exp.config.typed import to_typed
    from grit_exp.hydra_app import CONF_DIR

    overrides = ["experiment=zoom_demo", f"dataset.synthetic.num_train={max(prompts, 8)}",
                 "dataset.synthetic.num_val=8", f"rollout.max_new_tokens={max_new}", "rollout.stop_strings=[]",
                 "rollout.zoom.max_turns=2"]
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        cfg = to_typed(hydra_compose(config_name="train", overrides=overrides), TrainConfig)
    validate_train(cfg)
    return cfg


def setup(prompts: int, max_new: int) -> tuple[Any, Any, torch.nn.Module, list, list[str]]:
    """(cfg, adapter, model, rows, user texts): the first `prompts` training rows of the zoom task."""
    from grit_exp.data.prompts import build_user_text
    from grit_exp.data.reader import load_dataset_splits
    from grit_exp.models import build_adapter

    cfg = compose(prompts, max_new)
    rows = load_dataset_splits(cfg.dataset, cfg.seed)[0][:prompts]
    adapter = build_adapter(cfg.model)
    model = adapter.load_model("cpu").eval()
    return cfg, adapter, model, rows, [build_user_text(r.question, cfg.prompt, adapter.family) for r in rows]


def zoom_plan(adapter: Any, rows: list, geometries: list, repeats: int, max_new: int, calls: str = "staggered"
              ) -> dict[int, dict[int, int]]:
    """Per completion {model-written index: token}: 0-2 zoom calls (red square, then a 3x wider box), then an end.
    `staggered`: each call after 6-30 free tokens; `aligned`: every call i closes at token ALIGNED[i] (the decode
    batch's rows call at the same step)."""
    from grit_exp.rollout.seeded_sampling import completion_seed

    def ids(text: str) -> list[int]:
        return adapter.tokenizer(text, add_special_tokens=False)["input_ids"]

    plans = {}
    for c in range(len(rows) * repeats):
        p = c // repeats
        rng = random.Random(completion_seed(SEED, -1, p, c % repeats))
        x1, y1, x2, y2 = geometries[p].original_to_model(rows[p].bboxs[0], clip=True)
        cx, cy, w, h = (x1 + x2) / 2, (y1 + y2) / 2, x2 - x1, y2 - y1
        wide = [max(0, cx - 1.5 * w), max(0, cy - 1.5 * h), cx + 1.5 * w, cy + 1.5 * h]
        boxes = [[x1, y1, x2, y2], wide]
        steps = [(rng.randint(6, 30), ids("<zoom>[{}]</zoom>".format(", ".join(str(round(v)) for v in boxes[i]))))
                 for i in range(rng.choices([0, 1, 2], weights=[1, 4, 3])[0])]
        if calls == "aligned":  # call i starts len(call) tokens before ALIGNED[i], right after call i - 1 ends
            steps = [(ALIGNED[i] - len(t) - (ALIGNED[i - 1] if i else 0), t) for i, (_, t) in enumerate(steps)]
        if rng.random() < 0.75:
            steps.append((rng.randint(8, 48), [adapter.eos_token_ids[0]]))
        plan, n = {}, 0
        for gap, tokens in steps:
            n += gap
            plan.update({n + i: t for i, t in enumerate(tokens) if n + i < max_new})
            n += len(tokens)
        plans[c] = plan
    return plans


class KeyedChoice:
    """The decode loop's choice: token n of completion c is drawn (T, top-k) with noise seeded by (c, n), then the
    plan's token replaces it where the plan has one (an unplanned end of turn becomes `filler`); past
    `limit` model-written tokens it ends the row (the re-prefill side trims that token). `completions[r]` and
    `offsets[c]`: the completion of the call's row r and its tokens written before the call."""

    def __init__(self, seeds: list[int], plan: dict[int, dict[int, int]], eos: list[int], filler: int,
                 temperature: float, top_k: int, limit: int, completions: list[int], offsets: list[int]):
        self.seeds, self.plan, self.eos, self.filler = seeds, plan, eos, filler
        self.temperature, self.top_k, self.limit = temperature, top_k, limit
        self.completions, self.offsets, self.step = completions, offsets, 0
        self.generator = torch.Generator()

    def __call__(self, scores: torch.Tensor, rows: list[int]) -> torch.Tensor:
        from grit_exp.rollout.seeded_sampling import completion_seed, filter_top_k_top_p

        logits = filter_top_k_top_p(scores.float() / self.temperature, self.top_k, 1.0)
        out = []
        for i, r in enumerate(rows):
            c = self.completions[r]
            n = self.offsets[c] + self.step
            if n >= self.limit:
                out.append(self.eos[0])
                continue
            self.generator.manual_seed(completion_seed(self.seeds[c], n, 0, 0))
            uniform = torch.rand(logits.shape[-1], generator=self.generator).clamp(min=1e-20, max=1.0 - 1e-7)
            token = int((logits[i] - torch.log(-torch.log(uniform))).argmax())
            planned = self.plan.get(c, {})
            out.append(planned[n] if n in planned else self.filler if token in self.eos else token)
        self.step += 1
        return torch.tensor(out, dtype=torch.long, device=scores.device)


def _choice(cfg: Any, adapter: Any, plan: dict, completions: list[int], offsets: list[int]) -> KeyedChoice:
    from grit_exp.rollout.seeded_sampling import completion_seed

    total = len(plan)
    seeds = [completion_seed(SEED, 1, c, 0) for c in range(total)]
    filler = adapter.tokenizer("a", add_special_tokens=False)["input_ids"][0]
    return KeyedChoice(seeds, plan, adapter.eos_token_ids, filler, float(cfg.rollout.temperature),
                       int(cfg.rollout.top_k), int(cfg.rollout.max_new_tokens), completions, offsets)


def in_place(cfg: Any, adapter: Any, model: torch.nn.Module, rows: list, texts: list[str], repeats: int,
             calls: str = "staggered") -> dict:
    """grit-exp's zoom rollout (what `HFRollout.generate` runs with `rollout.zoom` on, with the keyed choice)."""
    from grit_exp.rollout.decode import decode
    from grit_exp.rollout.zoom.turns import ZoomSession

    prompts = adapter.build_prompt_batch(rows, texts)
    total = len(rows) * repeats
    tool = ZoomSession(adapter, cfg.rollout.zoom, rows, prompts.geometries, repeats, prompts.inputs.get("image_grid_thw"))
    plan = zoom_plan(adapter, rows, prompts.geometries, repeats, int(cfg.rollout.max_new_tokens), calls)
    choice = _choice(cfg, adapter, plan, list(range(total)), [0] * total)
    ids = decode(model, model, prompts.inputs, repeats, int(cfg.rollout.max_new_tokens), choice, adapter.eos_token_ids,
                 adapter.pad_token_id, adapter.suppressed_token_ids, tool=tool)
    columns = prompts.prompt_length + ids.shape[1]  # every row's KV cache: its own turns and the others' holes
    ids, mask, turns = tool.completions(ids)
    span = (mask + turns.tool_mask).bool()
    return {"completions": [ids[c][span[c]].tolist() for c in range(total)],
            "tool": [turns.tool_mask[c][span[c]].bool().tolist() for c in range(total)],
            "calls": [tool.calls.get(c, []) for c in range(total)], "prefills": 1, "kv_columns": columns,
            "tool_passes": len({i.column + len(i.turn.ids) for i in tool.insertions}),
            "longest_conversation": prompts.prompt_length + int(span.sum(1).max())}


def reprefill(cfg: Any, adapter: Any, model: torch.nn.Module, rows: list, texts: list[str], repeats: int,
              calls: str = "staggered") -> dict:
    """Every turn a fresh generate call over each continuing row's whole conversation (module docstring)."""
    from grit_exp.rollout.decode import decode
    from grit_exp.rollout.stop_strings import StopStringsByTokenIds
    from grit_exp.rollout.zoom.turns import ZoomSession

    prompts = adapter.build_prompt_batch(rows, texts)
    inputs, total, max_new = prompts.inputs, len(rows) * repeats, int(cfg.rollout.max_new_tokens)
    tool = ZoomSession(adapter, cfg.rollout.zoom, rows, prompts.geometries, repeats, inputs.get("image_grid_thw"))
    plan = zoom_plan(adapter, rows, prompts.geometries, repeats, max_new, calls)
    close = StopStringsByTokenIds(adapter.tokenizer, [cfg.rollout.zoom.close_tag])
    pad, eos = adapter.pad_token_id, adapter.eos_token_ids
    prompt_ids = [inputs["input_ids"][p][inputs["attention_mask"][p].bool()].tolist() for p in range(len(rows))]
    grids = inputs["image_grid_thw"]
    ends = grids.prod(-1).cumsum(0).tolist()
    images = [[(inputs["pixel_values"][ends[p] - int(grids[p].prod()):ends[p]], grids[p][None])]
              for p in range(len(rows)) for _ in range(repeats)]  # per completion: its images so far
    new: list[list[int]] = [[] for _ in range(total)]
    is_tool: list[list[bool]] = [[] for _ in range(total)]
    written, prefills, widest = [0] * total, 0, 0
    batch, batch_repeats, going = inputs, repeats, list(range(total))
    while going:
        budget = max_new - min(written[c] for c in going)
        choice = _choice(cfg, adapter, plan, going, written)
        ids = decode(model, model, batch, batch_repeats, budget, choice, eos, pad, adapter.suppressed_token_ids,
                     stop_rules=[close])
        prefills += 1
        widest = max(widest, batch["input_ids"].shape[1] + ids.shape[1])
        still = []
        for r, c in enumerate(going):
            turn = ids[r].tolist()
            turn = turn[:turn.index(pad)] if pad in turn else turn
            turn = turn[:max_new - written[c]]
            ended = next((i for i, t in enumerate(turn) if t in eos), None)
            turn = turn[:ended + 1] if ended is not None else turn
            new[c] += turn
            is_tool[c] += [False] * len(turn)
            written[c] += len(turn)
            if ended is not None or written[c] >= max_new or not bool(close(torch.tensor([new[c]]), None)[0]):
                continue
            reply = tool.respond(c, turn)
            new[c] += reply.ids
            is_tool[c] += [True] * len(reply.ids)
            if reply.pixel_values is not None:
                images[c].append((reply.pixel_values, reply.image_grid_thw))
            still.append(c)
        going, batch_repeats = still, 1
        if going:
            batch = _conversations(adapter, [prompt_ids[c // repeats] + new[c] for c in going],
                                   [images[c] for c in going], pad)
    return {"completions": new, "tool": is_tool, "calls": [tool.calls.get(c, []) for c in range(total)],
            "prefills": prefills, "tool_passes": 0, "kv_columns": widest,
            "longest_conversation": max(len(prompt_ids[c // repeats]) + len(new[c]) for c in range(total))}


def _conversations(adapter: Any, sequences: list[list[int]], images: list[list], pad: int) -> dict[str, torch.Tensor]:
    """Model inputs for whole conversations: left-padded ids, mask, image token types, every image's pixels."""
    width = max(len(s) for s in sequences)
    ids = torch.full((len(sequences), width), pad, dtype=torch.long)
    mask = torch.zeros(len(sequences), width, dtype=torch.long)
    for i, s in enumerate(sequences):
        ids[i, width - len(s):] = torch.tensor(s)
        mask[i, width - len(s):] = 1
    flat = [image for row in images for image in row]
    return {"input_ids": ids, "attention_mask": mask, "mm_token_type_ids": (ids == adapter.processor.image_token_id).int(),
            "pixel_values": torch.cat([p for p, _ in flat]), "image_grid_thw": torch.cat([g for _, g in flat])}


ROLLOUTS = {"in_place": in_place, "reprefill": reprefill}
COUNTS = ("model_tokens", "tool_tokens", "turns", "tool_calls", "crops", "prefills", "tool_passes", "kv_columns",
          "longest_conversation")


def rss_mb() -> tuple[float, float]:
    """(current RSS, peak RSS) of this process in MB."""
    with open("/proc/self/statm") as f:
        current = int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20
    return current, peak_rss_mb()


def summary_of(result: dict) -> dict:
    """Counts of one rollout: model-written tokens, tool-turn tokens, turns, calls, crops."""
    calls = [call for row in result["calls"] for call in row]
    return {"model_tokens": sum(t.count(False) for t in result["tool"]),
            "tool_tokens": sum(t.count(True) for t in result["tool"]),
            "turns": sum(1 + len(row) for row in result["calls"]), "tool_calls": len(calls),
            "crops": sum(call.ok for call in calls), **{k: result[k] for k in COUNTS[-4:]}}


def worker(side: str, calls: str, prompts: int, repeats: int, max_new: int, warmup: int, rollouts: int,
           out: Path) -> None:
    torch.set_num_threads(int(os.environ.get("BENCH_THREADS", "1")))
    cfg, adapter, model, rows, texts = setup(prompts, max_new)
    before = rss_mb()[0]
    records = []
    for _ in range(warmup + rollouts):
        started = time.perf_counter()
        with torch.no_grad():
            result = ROLLOUTS[side](cfg, adapter, model, rows, texts, repeats, calls)
        records.append({"s": time.perf_counter() - started, **summary_of(result)})
    out.write_text(json.dumps({"side": side, "records": records[warmup:], "rss_before_mb": before,
                               "peak_rss_mb": rss_mb()[1], "threads": torch.get_num_threads(),
                               "completions": result["completions"], "tool": result["tool"],
                               "calls": [[repr(c) for c in row] for row in result["calls"]]}))


def summarize(runs: list[dict]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for side in SIDES:
        mine = [run for run in runs if run["side"] == side]
        timed = [r for run in mine for r in run["records"]]
        result[side] = {
            "s_per_rollout": statistics.median(r["s"] for r in timed),
            "completion_tokens_per_s": statistics.median(r["model_tokens"] / r["s"] for r in timed),
            "peak_rss_mb": max(run["peak_rss_mb"] for run in mine),
            "peak_rss_rise_mb": max(run["peak_rss_mb"] - run["rss_before_mb"] for run in mine),
            **{k: timed[0][k] for k in COUNTS},
            "processes": len(mine), "timed_rollouts": len(timed), "s_all": [round(r["s"], 4) for r in timed]}
    reference = next(run for run in runs if run["side"] == "in_place")  # every process of both sides: the same work
    result["identical"] = all(run[k] == reference[k] for run in runs for k in ("completions", "tool", "calls"))
    result["ratio"] = (result["in_place"]["completion_tokens_per_s"] / result["reprefill"]["completion_tokens_per_s"])
    return result


def run_plan(args: argparse.Namespace, calls: str, tmp: Path, load: list[float]) -> dict[str, Any] | None:
    """Both sides on the `calls` plan, each in its own processes (A B B A ...); None if a worker failed."""
    order = abba(args.rounds, sides=SIDES)
    env = {**os.environ, "BENCH_THREADS": os.environ.get("BENCH_THREADS", "1")}
    runs = []
    for index, side in enumerate(order):
        out = tmp / f"{calls}_{index}_{side}.json"
        command = [sys.executable, __file__, "--worker", side, "--calls", calls, "--warmup", str(args.warmup),
                   "--rollouts", str(args.rollouts), "--prompts", str(args.prompts), "--generations",
                   str(args.generations), "--max-new", str(args.max_new), "--out", str(out)]
        done = subprocess.run(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=env)
        if done.returncode != 0:
            log.error("%s worker failed:\n%s", side, done.stderr[-4000:])
            return None
        runs.append(json.loads(out.read_text()))
        load.append(os.getloadavg()[0])
        log.info("%s, %s process %d: median %.3f s/rollout, peak RSS %.0f MB", calls, side, index,
                 statistics.median(r["s"] for r in runs[-1]["records"]), runs[-1]["peak_rss_mb"])
    result = summarize(runs)
    result["order"] = order
    a, b = result["in_place"], result["reprefill"]
    log.info("%s calls: in place %.3f s/rollout, %.0f tokens/s, peak RSS %.0f MB; re-prefill %.3f s/rollout, "
             "%.0f tokens/s, peak RSS %.0f MB: %.2fx the tokens/s (goal 2x); %d turns, %d tool calls, %d crops, "
             "%d tool passes in place; identical: %s", calls, a["s_per_rollout"], a["completion_tokens_per_s"],
             a["peak_rss_mb"], b["s_per_rollout"], b["completion_tokens_per_s"], b["peak_rss_mb"], result["ratio"],
             a["turns"], a["tool_calls"], a["crops"], a["tool_passes"], result["identical"])
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=3, help="A B rounds: each side runs in this many processes")
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--rollouts", type=int, default=4, help="timed rollout calls per process")
    parser.add_argument("--prompts", type=int, default=8)
    parser.add_argument("--generations", type=int, default=4)
    parser.add_argument("--max-new", type=int, default=160)
    parser.add_argument("--calls", default=",".join(PLANS), help=f"comma-separated plans of zoom calls: {PLANS}")
    parser.add_argument("--worker", choices=SIDES)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stdout)
    plans = args.calls.split(",")
    if any(p not in PLANS for p in plans):
        parser.error(f"--calls={args.calls!r}: choose from {PLANS}")
    if args.worker:
        worker(args.worker, plans[0], args.prompts, args.generations, args.max_new, args.warmup, args.rollouts,
               args.out)
        return 0
    setup(args.prompts, args.max_new)  # builds the data set and the tiny model once, before any timing
    load = [os.getloadavg()[0]]
    result: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for calls in plans:
            result[calls] = run_plan(args, calls, Path(tmp), load)
            if result[calls] is None:
                return 1
    result["work"] = {"model": "tiny_qwen2_5_vl (random weights)", "task": "experiment=zoom_demo (synthetic_zoom)",
                      "prompts": args.prompts, "num_generations": args.generations, "max_new_tokens": args.max_new,
                      "max_turns": 2, "sampling": "T=1.0, top-k 50, noise keyed by (completion, token index)",
                      "plans": {"staggered": "calls after 6-30 free tokens each",
                                "aligned": f"call i closes at model-written token {ALIGNED[0]} / {ALIGNED[1]}"}}
    result["conditions"] = {"load_average": [round(x, 2) for x in load], "cpu_cores": os.cpu_count(),
                            "torch_threads": int(os.environ.get("BENCH_THREADS", "1")), "warmup_rollouts": args.warmup,
                            "timed_rollouts_per_process": args.rollouts, "date": time.strftime("%Y-%m-%d %H:%M")}
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "zoom_rollout.json").write_text(json.dumps(result, indent=2) + "\n")
    return 0 if all(result[c]["identical"] and result[c]["in_place"]["crops"] > 0 for c in plans) else 1


if __name__ == "__main__":
    sys.exit(main())
