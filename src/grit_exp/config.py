"""Typed schemas of every config group, their ConfigStore registration, and semantic validation.

Structural errors (a misspelled key, a wrong type) are caught by OmegaConf when Hydra composes a
YAML file onto its schema. Semantic errors (a batch not divisible by the group size, an unknown
reward term) are caught by `validate`, which runs before any model is loaded. This module imports
nothing heavy: no torch, no transformers.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from hydra.core.config_store import ConfigStore
from omegaconf import MISSING, DictConfig, OmegaConf

from grit_exp.errors import GritError

# ---------------------------------------------------------------------------------------------
# group schemas
# ---------------------------------------------------------------------------------------------

MODEL_FAMILIES = ("qwen2_5_vl", "internvl")
DTYPES = ("float32", "bfloat16", "float16")
ATTN_IMPLEMENTATIONS = ("sdpa", "eager", "flash_attention_2")


@dataclass
class LoraConfig:
    enabled: bool = False
    r: int = 16
    alpha: int = 32
    dropout: float = 0.05
    target_modules: list[str] = field(default_factory=lambda: ["q_proj", "k_proj", "v_proj", "o_proj"])
    # no adapters in the vision tower (InternVL's vision attention also has q/k/v_proj)
    exclude_vision: bool = True


@dataclass
class ModelConfig:
    name: str = MISSING
    family: str = MISSING  # one of MODEL_FAMILIES
    # Hub id or local directory. For tiny models: the directory the builder writes to (cached).
    path: str = MISSING
    # Name of an offline builder in grit_exp.models.tiny (e.g. "tiny_qwen2_5_vl"); null for real checkpoints.
    tiny_builder: str | None = None
    dtype: str = "float32"  # one of DTYPES; bf16 autocast on GPU is a trainer setting
    attn_implementation: str = "sdpa"  # one of ATTN_IMPLEMENTATIONS
    gradient_checkpointing: bool = False
    # Qwen2.5-VL image geometry (pixels of the resized input, multiples of 28)
    min_pixels: int = 3136
    max_pixels: int = 256 * 28 * 28
    # InternVL tiling
    tile_size: int = 448
    max_tiles: int = 2
    use_thumbnail: bool = True
    max_prompt_length: int = 750
    freeze_vision: bool = False
    freeze_projector: bool = False
    freeze_llm: bool = False
    lora: LoraConfig = field(default_factory=LoraConfig)


@dataclass
class DataFileConfig:
    path: str = MISSING  # a GRIT_data JSONL file
    image_root: str = MISSING  # folder that the rows' relative `image` paths resolve against
    name: str | None = None  # optional label; rows keep their own `dataset` field


@dataclass
class SyntheticDataConfig:
    """The embedded default data: a seeded generator writing GRIT_data-format JSONL + PNG files."""

    enabled: bool = False
    out_dir: str = "${paths.cache_dir}/synthetic"
    num_train: int = 2000
    num_val: int = 120
    image_size: int = 112
    seed: int = 1234
    kind_weights: list[float] = field(default_factory=lambda: [0.6, 0.2, 0.2])  # count / spatial / box questions
    max_count: int = 4  # counting answers are 0..max_count
    max_distractors: int = 3  # objects of another colour or shape per image, at most
    count_targets: int = 9  # counting questions ask about the first N colour/shape pairs (1: red squares only)


@dataclass
class DatasetConfig:
    name: str = MISSING
    train: list[DataFileConfig] = field(default_factory=list)
    eval: list[DataFileConfig] = field(default_factory=list)
    num_samples: int | None = None  # deterministic, seed-controlled subset of the train rows
    eval_num_samples: int | None = None  # the same for each eval file (quick evals)
    on_error: str = "raise"  # "raise" | "skip"
    synthetic: SyntheticDataConfig = field(default_factory=SyntheticDataConfig)


@dataclass
class FamilyPromptConfig:
    suffix: str | None = None
    example: str | None = None


@dataclass
class PromptConfig:
    name: str = MISSING
    question_prefix: str = "\nQuestion: "
    suffix: str = ""
    example: str = ""  # one-shot ICL example appended after the suffix
    family_overrides: dict[str, FamilyPromptConfig] = field(default_factory=dict)


@dataclass
class RewardConfig:
    name: str = MISSING
    # term name -> weight. Terms with weight 0 are still computed and logged.
    weights: dict[str, float] = field(default_factory=dict)
    # term name -> options for that term (validated by the term itself)
    options: dict[str, dict[str, Any]] = field(default_factory=dict)
    # datasets whose rows are counting questions (the count term applies to these rows only)
    counting_datasets: list[str] = field(default_factory=lambda: ["tallyqa", "synth_count"])


@dataclass
class JudgeConfig:
    """The answer judge (grit_exp.judge); checked by grit_exp.judge.validate_judge_config."""

    kind: str = "rules"  # "rules" (offline, deterministic) | "openai" (any OpenAI-compatible endpoint)
    base_url: str | None = None  # e.g. http://localhost:8000/v1 (vLLM); null: api.openai.com / AZURE_OPENAI_ENDPOINT
    model: str = "gpt-4o"  # for Azure: the deployment name
    # null (read OPENAI_API_KEY, or AZURE_OPENAI_API_KEY with api_type=azure) or exactly "${oc.env:VAR}".
    # A literal key is refused (grit_exp.api_keys): it would be saved in .hydra/*.yaml.
    api_key: str | None = None
    api_type: str = "openai"  # "openai" | "azure"
    api_version: str | None = None  # Azure only; null: OPENAI_API_VERSION
    concurrency: int = 32  # requests in flight at once
    timeout_s: float = 60.0  # per request
    # the openai client's retries (timeouts, drops, 408/409/429/5xx; its backoff, Retry-After honoured),
    # and as many re-asks after a reply without a score
    max_retries: int = 5
    temperature: float = 0.0
    max_tokens: int = 64  # the reply is "{score: <score>}"; room for a short preamble
    cache_path: str | None = "${paths.cache_dir}/judge_cache.sqlite"  # sqlite; null: no cache


@dataclass
class VLLMRolloutConfig:
    """rollout=vllm: the colocated engine of each training process (grit_exp.rollout.vllm)."""

    gpu_memory_utilization: float = 0.3  # share of the GPU the engine takes (weights + KV cache); the rest trains
    kv_cache_memory_bytes: int | None = None  # an exact KV-cache size instead (required on CPU, e.g. 67108864)
    max_model_len: int | None = None  # prompt + completion tokens; null: the model's maximum
    max_num_seqs: int | None = None  # sequences decoded at once; null: vLLM's default
    enforce_eager: bool = False  # true: no CUDA graphs / torch.compile (faster start, slower decode)
    sleep: bool = True  # GPU only: offload the engine's weights and free its KV cache during the update


@dataclass
class RolloutConfig:
    kind: str = "hf"  # "hf" | "vllm" | "replay"
    temperature: float = 0.9
    top_k: int = 50
    top_p: float = 1.0
    max_new_tokens: int = 1000
    stop_strings: list[str] = field(default_factory=lambda: ["</answer>"])
    # replay only
    path: str | None = None
    image_root: str | None = None
    on_error: str = "raise"
    # vllm only
    vllm: VLLMRolloutConfig = field(default_factory=VLLMRolloutConfig)


@dataclass
class DynamicSamplingConfig:
    """DAPO's dynamic sampling (grit_exp.algorithm.dynamic_sampling): groups whose G rewards are all equal
    (zero advantage, no gradient) are dropped, and further rounds of trainer.prompts_per_step prompts are
    drawn and rolled out until the step has trainer.prompts_per_step groups with reward spread or
    max_rounds rounds were generated; then it trains on the groups it has. Off in the paper's recipe."""

    enabled: bool = False
    max_rounds: int = 4  # generation rounds per step at most (1: only drop, never draw more prompts)


@dataclass
class AlgorithmConfig:
    name: str = MISSING  # "grpo" | "dr_grpo" | "dapo" | "sft"
    num_generations: int = 4
    beta: float = 0.01
    num_iterations: int = 1
    epsilon_low: float = 0.2
    epsilon_high: float = 0.2
    scale_rewards: str = "group"  # "group" | "batch" | "none"
    advantage_eps: float = 1e-4
    # "seq_mean_token_mean" (released GRIT code / GRPO), "token_mean" (DAPO), "seq_mean_token_sum_norm" (Dr. GRPO)
    loss_aggregation: str = "seq_mean_token_mean"
    # Temperature of the log-probs in the ratio and KL: "sampling" divides logits by rollout.temperature
    # (the policy that was sampled, as TRL does); "one" uses raw logits (the released GRIT code).
    logprob_temperature: str = "sampling"
    dynamic_sampling: DynamicSamplingConfig = field(default_factory=DynamicSamplingConfig)


@dataclass
class SlurmConfig:
    """SLURM resources of each job of a sweep (`cluster=slurm`, read by conf/hydra/launcher/submitit_slurm.yaml).

    Every job runs one SLURM task per GPU (`tasks_per_node: 0`), one task on CPU nodes; each task
    joins torch.distributed through grit_exp.cluster.slurm_env."""

    nodes: int = 1
    gpus_per_node: int = 0  # 0: CPU tasks
    tasks_per_node: int = 0  # 0: one per GPU (gpus_per_node), 1 on CPU nodes
    cpus_per_task: int = 1
    mem_gb: int | None = None  # per node; null: the partition's default
    partition: str | None = None
    account: str | None = None
    qos: str | None = None
    constraint: str | None = None
    timeout_min: int = 60
    signal_delay_s: int = 120  # SIGUSR2 this long before the time limit: checkpoint, requeue, resume
    max_requeues: int = 3  # requeues after a time-out (preemptions are always requeued)
    array_parallelism: int = 256  # jobs of one sweep running at once
    setup: list[str] = field(default_factory=list)  # shell lines run before the tasks (module load ...)


@dataclass
class ClusterConfig:
    """Where and how the processes of one job train (grit_exp.cluster.engine). The number of
    processes comes from the launcher (torchrun, accelerate launch, SLURM tasks), not from here."""

    name: str = MISSING
    # "ddp": plain data parallelism (one process: no wrapper at all); "deepspeed": ZeRO from deepspeed_config
    engine: str = "ddp"
    # A DeepSpeed JSON (launchers/deepspeed/*.json; relative paths resolve against the repository root);
    # batch sizes, accumulation, clipping and precision are filled in from trainer.* at start-up.
    deepspeed_config: str | None = None
    backend: str = "auto"  # process-group backend: "auto" (nccl with CUDA, else gloo) | "nccl" | "gloo"
    slurm: SlurmConfig = field(default_factory=SlurmConfig)  # each SLURM job's resources (hydra/launcher=submitit_slurm)


@dataclass
class LoggerConfig:
    kind: str = "jsonl"  # "jsonl" | "wandb"
    project: str = "grit-exp"
    entity: str | None = None
    mode: str = "offline"  # wandb mode unless WANDB_MODE says otherwise
    log_every: int = 1


@dataclass
class PathsConfig:
    data_root: str = "${oc.env:GRIT_DATA_ROOT,data/GRIT_data}"
    cache_dir: str = "${oc.env:GRIT_EXP_CACHE,${oc.env:HOME}/.cache/grit_exp}"


@dataclass
class TrainerConfig:
    max_steps: int = 200
    prompts_per_step: int = 32  # prompts per optimizer step (global); completions = prompts x G
    micro_batch_size: int = 8  # completions per forward/backward pass
    learning_rate: float = 2e-6
    weight_decay: float = 0.0
    lr_scheduler: str = "cosine"  # "cosine" | "constant"
    warmup_steps: int = 0
    max_grad_norm: float = 1.0
    # Compute precision of trainable weights (always stored as fp32 masters): "auto" = bf16 on CUDA and
    # fp32 on CPU (bit-reproducible); "bf16" forces bf16 compute (also on CPU); "no" = fp32.
    mixed_precision: str = "auto"
    eval_every: int = 50
    save_every: int = 50
    keep_last: int = 2
    resume: str = "auto"  # "auto" | "never" | a checkpoint directory
    # Supervised warm start on the rows' gold chains before RL; cached by a fingerprint, so it runs once.
    warm_start_sft_steps: int = 0
    warm_start_learning_rate: float = 1e-5  # a real model's; the CPU demo's 1e-3 is in conf/demo/cpu_train.yaml
    warm_start_batch_size: int = 32
    eval_batch_size: int = 32
    eval_on_start: bool = True
    # samples per eval row for eval/<dataset>/reward_sampled (the reward GRPO optimises, at
    # rollout.temperature; evaluation/sampled_reward.py); 0: greedy evaluation only
    eval_sampled_k: int = 0


@dataclass
class Table1Config:
    """Which row of the paper's Table 1 a run fills (read by grit_exp.report); null: inferred.

    `model` defaults to model.name (qwen2_5_vl_3b, internvl3_2b); `method` (direct, cot, icl1, sft,
    grit) to what the weights are (grit_exp.reporting.methods: GRIT only for GRPO-trained weights, the
    base model with the GRIT prompt is cot). Any other value makes a row of its own, without paper numbers."""

    model: str | None = None
    method: str | None = None


@dataclass
class RunConfig:
    """What every entry point composes: the shared groups plus experiment metadata."""

    seed: int = 0
    paths: PathsConfig = field(default_factory=PathsConfig)
    model: ModelConfig = MISSING
    dataset: DatasetConfig = MISSING
    prompt: PromptConfig = MISSING
    reward: RewardConfig = MISSING
    judge: JudgeConfig = MISSING
    rollout: RolloutConfig = MISSING
    cluster: ClusterConfig = MISSING
    logger: LoggerConfig = MISSING
    # Set by experiment files; free-form note shown in run_info.json and the report.
    experiment_note: str = ""
    # Set by the table1_* experiment files: the Table 1 row a run fills (grit_exp.report).
    table1: Table1Config = field(default_factory=Table1Config)
    # Set by conf/demo/*.yaml: the CPU demo's values were applied (tiny models only); null for a real run.
    demo_values: str | None = None


@dataclass
class TrainConfig(RunConfig):
    algorithm: AlgorithmConfig = MISSING
    trainer: TrainerConfig = field(default_factory=TrainerConfig)


GROUP_SCHEMAS: dict[str, type] = {
    "model": ModelConfig,
    "dataset": DatasetConfig,
    "prompt": PromptConfig,
    "reward": RewardConfig,
    "judge": JudgeConfig,
    "rollout": RolloutConfig,
    "algorithm": AlgorithmConfig,
    "cluster": ClusterConfig,
    "logger": LoggerConfig,
}


def register_configs() -> None:
    """Register the top-level schema and one `<group>/schema` node per group.

    Each YAML file of a group lists `<group>/schema` (or the top-level `train_schema`) first in its
    defaults list, so a misspelled key or a wrong type fails when Hydra composes it.
    """
    cs = ConfigStore.instance()
    cs.store(name="train_schema", node=TrainConfig)
    cs.store(name="eval_schema", node=EvalConfig)  # conf/eval.yaml (python -m grit_exp.evaluate)
    for group, schema in GROUP_SCHEMAS.items():
        cs.store(group=group, name="schema", node=schema)


# ---------------------------------------------------------------------------------------------
# semantic validation
# ---------------------------------------------------------------------------------------------


class ConfigError(GritError, ValueError):
    """A composed config is well-typed but makes no sense; the message names the key."""


def _one_of(key: str, value: Any, valid: tuple[str, ...] | list[str]) -> None:
    if value not in valid:
        raise ConfigError(f"{key}={value!r} is not valid; choose one of {', '.join(map(repr, valid))}")


# Every enumerated setting and its valid values, checked for whichever of these keys a config holds
# (`check_enumerated_values`); the entry points run it when composing, before Hydra runs the job
# (grit_exp.preflight). judge.kind / judge.api_type are checked with the judge (validate_judge_config).
ENUMERATED_VALUES: dict[str, tuple[str, ...]] = {
    "model.family": MODEL_FAMILIES,
    "model.dtype": DTYPES,
    "model.attn_implementation": ATTN_IMPLEMENTATIONS,
    "dataset.on_error": ("raise", "skip"),
    "rollout.kind": ("hf", "vllm", "replay"),
    "rollout.on_error": ("raise", "skip"),
    "algorithm.name": ("grpo", "dr_grpo", "dapo", "sft"),
    "algorithm.scale_rewards": ("group", "batch", "none"),
    "algorithm.loss_aggregation": ("seq_mean_token_mean", "token_mean", "seq_mean_token_sum_norm"),
    "algorithm.logprob_temperature": ("sampling", "one"),
    "trainer.lr_scheduler": ("cosine", "constant"),
    "trainer.mixed_precision": ("auto", "bf16", "no"),
    "cluster.engine": ("ddp", "deepspeed"),
    "cluster.backend": ("auto", "nccl", "gloo"),
    "logger.kind": ("jsonl", "wandb"),
}
# Values valid only in a training config (one with `trainer`): vLLM generates training's rollouts;
# evaluate and infer generate with HF.
TRAINING_ONLY_VALUES: dict[str, tuple[str, ...]] = {"rollout.kind": ("vllm",)}
_ABSENT = object()


def check_enumerated_values(cfg: DictConfig) -> None:
    """ConfigError for the first key of ENUMERATED_VALUES whose value is not one of its valid values."""
    training = OmegaConf.select(cfg, "trainer", default=_ABSENT) is not _ABSENT
    for key, valid in ENUMERATED_VALUES.items():
        value = OmegaConf.select(cfg, key, default=_ABSENT)
        if value is not _ABSENT and value is not None:
            if not training:
                valid = tuple(v for v in valid if v not in TRAINING_ONLY_VALUES.get(key, ()))
            _one_of(key, value, valid)


def _validate_vllm_rollout(c: Any) -> None:
    v = c.rollout.vllm
    if "model" in c and c.model.family != "qwen2_5_vl":
        raise ConfigError(f"rollout=vllm supports model.family='qwen2_5_vl' (got {c.model.family!r}); use rollout=hf")
    if not 0 < v.gpu_memory_utilization <= 1:
        raise ConfigError(f"rollout.vllm.gpu_memory_utilization={v.gpu_memory_utilization} must be in (0, 1]")
    for key in ("kv_cache_memory_bytes", "max_model_len", "max_num_seqs"):
        if getattr(v, key) is not None and getattr(v, key) < 1:
            raise ConfigError(f"rollout.vllm.{key}={getattr(v, key)} must be >= 1 (or null)")


def validate_groups(cfg: DictConfig) -> None:
    """The checks of every group that a composed config holds: the validation that train, evaluate
    and infer share (each adds the checks of its own keys). Raises ConfigError naming the key."""
    check_enumerated_values(cfg)
    c: Any = cfg
    if "model" in c:
        if c.model.min_pixels > c.model.max_pixels:
            raise ConfigError(f"model.min_pixels={c.model.min_pixels} exceeds model.max_pixels={c.model.max_pixels}")
    if "dataset" in c:
        if c.dataset.num_samples is not None and c.dataset.num_samples < 1:
            raise ConfigError(f"dataset.num_samples={c.dataset.num_samples} must be >= 1 (or null for all rows)")
    if "judge" in c:
        from grit_exp.judge.factory import validate_judge_config  # light: no openai import

        validate_judge_config(c.judge)  # kind, api_type, numbers; judge.api_key: null or ${oc.env:VAR} only
    if "rollout" in c:
        if c.rollout.kind == "replay" and not c.rollout.path:
            raise ConfigError("rollout.kind=replay needs rollout.path=FILE.jsonl (recorded completions)")
        if c.rollout.kind == "vllm":
            _validate_vllm_rollout(c)
    if "reward" in c:
        _validate_reward_terms(c)


def validate(cfg: DictConfig, world_size: int = 1) -> None:
    """Check a composed training config; raise ConfigError naming the key and what is valid."""
    c: Any = cfg
    validate_groups(c)  # enumerated values, model, dataset, judge, rollout, reward
    if not c.dataset.train and not c.dataset.synthetic.enabled:
        raise ConfigError("dataset.train is empty and dataset.synthetic.enabled is false: no training data")
    if c.algorithm.name != "sft" and c.algorithm.num_generations < 2:
        raise ConfigError(
            f"algorithm.num_generations={c.algorithm.num_generations} must be >= 2: group-relative "
            "advantages of a single completion are always 0"
        )
    if c.get("demo_values") and not c.model.tiny_builder:
        raise ConfigError(
            f"model.tiny_builder=null loads a real checkpoint ({c.model.path}) but model={c.model.name} brings the CPU "
            "demo's values (conf/demo/cpu_train.yaml: trainer.learning_rate, trainer.warm_start_sft_steps, "
            "trainer.warm_start_learning_rate, trainer.max_steps, rollout.max_new_tokens); choose the real model's "
            "config instead (model=qwen2_5_vl_3b model.path=..., model=internvl3_2b model.path=...)"
        )
    if c.algorithm.beta < 0:
        raise ConfigError(f"algorithm.beta={c.algorithm.beta} must be >= 0")
    if c.algorithm.num_iterations < 1:
        raise ConfigError(f"algorithm.num_iterations={c.algorithm.num_iterations} must be >= 1")
    dynamic = c.algorithm.dynamic_sampling
    if dynamic.max_rounds < 1:
        raise ConfigError(f"algorithm.dynamic_sampling.max_rounds={dynamic.max_rounds} must be >= 1")
    if dynamic.enabled and c.algorithm.name == "sft":
        raise ConfigError(
            "algorithm.dynamic_sampling.enabled=true filters GRPO groups by reward spread; algorithm=sft has no "
            "groups: set it false or choose algorithm=grpo, dr_grpo or dapo"
        )
    t = c.trainer
    if t.prompts_per_step % world_size != 0:
        raise ConfigError(
            f"trainer.prompts_per_step={t.prompts_per_step} is not divisible by the {world_size} processes; "
            "each prompt's group must live on one process"
        )
    if c.algorithm.name != "sft":
        per_process = t.prompts_per_step // world_size * c.algorithm.num_generations
        if per_process % t.micro_batch_size != 0:
            raise ConfigError(
                f"trainer.micro_batch_size={t.micro_batch_size} does not divide the {per_process} completions "
                f"per process (trainer.prompts_per_step={t.prompts_per_step} / {world_size} processes x "
                f"algorithm.num_generations={c.algorithm.num_generations})"
            )
    else:
        per_process = t.prompts_per_step // world_size
        if per_process % min(t.micro_batch_size, per_process) != 0:
            raise ConfigError(
                f"trainer.micro_batch_size={t.micro_batch_size} does not divide the {per_process} rows per process "
                f"(trainer.prompts_per_step={t.prompts_per_step} / {world_size} processes)"
            )
    if c.cluster.engine == "deepspeed" and not c.cluster.deepspeed_config:
        raise ConfigError("cluster.engine=deepspeed needs cluster.deepspeed_config (e.g. launchers/deepspeed/zero2.json)")
    if c.cluster.engine != "deepspeed" and c.cluster.deepspeed_config:
        raise ConfigError(
            f"cluster.deepspeed_config={c.cluster.deepspeed_config!r} is set but cluster.engine={c.cluster.engine!r}; "
            "set cluster.engine=deepspeed (or cluster=node8) to use it"
        )
    if t.keep_last < 1:
        raise ConfigError(f"trainer.keep_last={t.keep_last} must be >= 1")


def _validate_reward_terms(c: Any) -> None:
    from grit_exp.rewards import check_reward_config  # light: no torch

    try:
        check_reward_config(c.reward)
    except ValueError as err:
        raise ConfigError(str(err)) from err


def to_plain(cfg: DictConfig) -> dict[str, Any]:
    """The resolved config as plain Python containers (for W&B and samples), secrets scrubbed.

    Resolving turns `judge.api_key: ${oc.env:VAR}` into the key itself, so scrubbing is not optional."""
    from grit_exp.api_keys import scrub_secrets

    return scrub_secrets(OmegaConf.to_container(cfg, resolve=True))  # type: ignore[return-value]


# ---------------------------------------------------------------------------------------------
# the evaluation entry (`python -m grit_exp.evaluate`, conf/eval.yaml); checked by
# grit_exp.evaluation.settings.validate_eval_config
# ---------------------------------------------------------------------------------------------


@dataclass
class EvalMetricsConfig:
    # The paper's "Vision-Language Reasoning Cross-Modal Correlation": a vision judge picks which of two
    # images carries the boxes that match the reasoning. Needs judge.kind=openai (a vision model).
    consistency: bool = False
    consistency_repeats: int = 3  # reported as mean +- std over the repeats


@dataclass
class EvalSettingsConfig:
    batch_size: int = 8  # rows per greedy generate call; batches are dealt round-robin to processes
    num_pictures: int = 16  # samples drawn (model boxes + GT boxes) and shown in report.html
    checkpoint: str | None = None  # weights to evaluate (e.g. <run>/checkpoints/step_N/model); null: model.path
    sampled_k: int = 0  # also K sampled completions per row at rollout.temperature: reward_sampled; 0: off


@dataclass
class EvalConfig(RunConfig):
    metrics: EvalMetricsConfig = field(default_factory=EvalMetricsConfig)
    eval: EvalSettingsConfig = field(default_factory=EvalSettingsConfig)
