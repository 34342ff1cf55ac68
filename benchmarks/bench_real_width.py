"""Peak memory and time of GRPO's log-probs + backward at real width: chunked vs plain log-softmax.

On the real-width, reduced-depth Qwen2.5-VL-3B (`grit_exp.models.real_width`: hidden 2048, the
151,936-token vocabulary, the real tokenizer and processor at the paper's pixel bounds, 2 text layers,
2 vision blocks), one micro-batch of B completions of T tokens over real-size prompts (a 448 x 448
image each: 256 image tokens) runs `adapter.completion_logprobs` (temperature 0.9, suppressed special
tokens masked, as training calls it) and the backward pass of the mean log-prob, in float32 on the CPU.
Two variants, each in a fresh process so peak RSS is its own:
- `chunked`: the toolkit's `selected_token_logprobs` (models/logprobs.py, no full float32 copy);
- `plain`: the computation it replaced (`plain_token_logprobs`: division, masking and log-softmax over
  the whole [B, T, vocab] tensor in float32).
Reports per variant: peak RSS of the process, peak above the RSS after the model loaded (the step's
own memory), and the median wall time of the step over --repeats runs. Results in
results/real_width.json.

Also `--what op`: the log-prob computation alone on [2, 1000, 151936] float32 logits, forward +
backward, peak RSS above the logits (what the change touches, without the model's own memory).

Run: `python benchmarks/bench_real_width.py [--what op|model|both] [--batch 1 --tokens 1000 --repeats 1]`
(builds the model into the toolkit cache on first use, ~2.2 GB; `both` takes ~5-10 min and ~10 GB
on 2 cores). Figures and how to read them: benchmarks/README.md. Left out: the optimizer step, generation, GPUs and
bfloat16 (where the plain computation's float32 copies are 2x the logits, not 1x).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

RESULTS = Path(__file__).parent / "results"


def rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS in /proc/self/status")


def measure_op(variant: str, batch: int, tokens: int, repeats: int) -> dict:
    """The log-prob computation alone on [batch, tokens, 151936] float32 logits (as the lm head returns
    them), forward + backward: what the change touches, without the model's own memory."""
    import torch

    from grit_exp.models.logprobs import plain_token_logprobs, selected_token_logprobs
    from grit_exp.models.real_width import QWEN2_5_VL_3B_TEXT, REAL_SPECIAL_IDS

    torch.manual_seed(0)
    torch.set_num_threads(int(os.environ.get("BENCH_THREADS", "2")))
    vocab = QWEN2_5_VL_3B_TEXT["vocab_size"]
    suppressed = [i for t, i in REAL_SPECIAL_IDS.items() if t != "<|im_end|>"]
    compute = plain_token_logprobs if variant == "plain" else selected_token_logprobs
    logits = (torch.randn(batch, tokens, vocab) * 3).requires_grad_(True)
    tokens_ids = torch.randint(0, 151643, (batch, tokens))
    base = rss_mb()
    times = []
    for _ in range(repeats + 1):  # the first run warms up; not timed
        logits.grad = None
        start = time.perf_counter()
        compute(logits, tokens_ids, 0.9, suppressed).mean().backward()
        times.append(time.perf_counter() - start)
    times = times[1:]
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {"what": "op", "variant": variant, "batch": batch, "completion_tokens": tokens, "vocab": vocab,
            "logits_mb": round(logits.numel() * 4 / 2**20), "rss_before_mb": round(base), "peak_rss_mb": round(peak),
            "peak_above_logits_mb": round(peak - base), "s_median": round(statistics.median(times), 3),
            "s": [round(t, 3) for t in times]}


def measure(variant: str, batch: int, tokens: int, repeats: int) -> dict:
    """One variant in this process: build, load, run the step `repeats` times; peak RSS and times."""
    import torch
    from omegaconf import OmegaConf
    from PIL import Image

    from grit_exp.config import ModelConfig
    from grit_exp.data.schema import GritRow
    from grit_exp.models import build_adapter, logprobs

    torch.manual_seed(0)
    torch.set_num_threads(int(os.environ.get("BENCH_THREADS", "2")))
    if variant == "plain":
        logprobs.selected_token_logprobs = logprobs.plain_token_logprobs  # the computation before
    cache = os.environ.get("GRIT_EXP_CACHE") or str(Path.home() / ".cache" / "grit_exp")
    group = OmegaConf.load(Path(__file__).resolve().parents[1] / "conf" / "model" / "real_width_qwen2_5_vl.yaml")
    group.pop("defaults")
    group.path = str(Path(cache) / "models" / "real_width_qwen2_5_vl")  # ${paths.cache_dir}/models/<builder>
    cfg = OmegaConf.merge(OmegaConf.structured(ModelConfig), group)
    adapter = build_adapter(cfg)
    model = adapter.load_model("cpu", dtype="float32")
    with torch.no_grad():  # weights resident (not pages of the mmap'd file), so RSS after load is real
        for param in model.parameters():
            param.data = param.data.clone()
    model.train()
    with tempfile.TemporaryDirectory() as folder:
        rows = []
        for i in range(batch):
            image = Path(folder) / f"{i}.png"
            Image.new("RGB", (448, 448), (30 * i, 120, 200)).save(image)
            rows.append(GritRow(question="How many red squares are there?", answer="1", image=str(image),
                                width=448, height=448, bboxs=[], dataset="bench", source=f"bench:{i + 1}"))
        prompt = adapter.build_prompt_batch(rows, ["\nQuestion: How many red squares are there?"] * batch)
    completion = torch.randint(0, 151643, (batch, tokens))
    mask = torch.ones_like(completion)
    base = rss_mb()
    times = []
    for _ in range(repeats + 1):  # the first run warms up (allocator, thread pools); not timed
        model.zero_grad(set_to_none=True)
        start = time.perf_counter()
        logp = adapter.completion_logprobs(model, prompt, completion, mask, temperature=0.9)
        logp.mean().backward()
        times.append(time.perf_counter() - start)
        del logp
    times = times[1:]
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {"what": "model", "variant": variant, "batch": batch, "completion_tokens": tokens, "prompt_tokens": prompt.prompt_length,
            "vocab": int(model.config.text_config.vocab_size), "rss_after_load_mb": round(base),
            "peak_rss_mb": round(peak), "step_peak_above_load_mb": round(peak - base),
            "step_s_median": round(statistics.median(times), 2), "step_s": [round(t, 2) for t in times]}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--batch", type=int, default=1)
    parser.add_argument("--tokens", type=int, default=1000)
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--what", choices=["op", "model", "both"], default="both",
                        help="op: the log-prob computation alone; model: completion_logprobs + backward of the model")
    parser.add_argument("--op-batch", type=int, default=2)
    parser.add_argument("--op-tokens", type=int, default=1000)
    parser.add_argument("--variant", choices=["chunked", "plain"], help="(internal) measure one variant here")
    parser.add_argument("--out", default="real_width.json")
    args = parser.parse_args()
    if args.variant:
        if args.what == "op":
            print(json.dumps(measure_op(args.variant, args.op_batch, args.op_tokens, args.repeats)))
        else:
            print(json.dumps(measure(args.variant, args.batch, args.tokens, args.repeats)))
        return 0
    results = []
    jobs = [(w, v) for w in ("op", "model") if args.what in (w, "both") for v in ("chunked", "plain")]
    for what, variant in jobs:
        proc = subprocess.run([sys.executable, __file__, "--what", what, "--variant", variant, "--batch",
                               str(args.batch), "--tokens", str(args.tokens), "--op-batch", str(args.op_batch),
                               "--op-tokens", str(args.op_tokens), "--repeats", str(args.repeats)],
                              capture_output=True, text=True)
        if proc.returncode != 0:
            sys.stderr.write(proc.stderr[-3000:])
            return proc.returncode
        results.append(json.loads(proc.stdout.strip().splitlines()[-1]))
        print(json.dumps(results[-1]))
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / args.out).write_text(json.dumps({"real_width_logprobs_backward": results}, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
