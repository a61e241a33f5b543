"""One rank of the distributed GRPO benchmark (started by ``run.py`` under torchrun).

A random-init Llama of the asked size trains with the bundled loop for ``--steps`` steps;
EOS is outside the model's vocabulary, so every completion has exactly ``--tokens`` tokens
and the work per step is fixed. Writes ``rank<k>.json``: completion tokens, step seconds
(after the first, warm-up step) and peak memory of this rank.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import time
from pathlib import Path

import torch


def variety(completions, **kwargs):
    """A reward that varies within a group, so every step has a gradient."""
    return [len(set(c)) / 8 for c in completions]


def tokenizer(vocab: int):
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    chars = list("abcdefghijklmnopqrstuvwxyz0123456789 +-=<>/\n.?:")
    names = ["<pad>", "<bos>"] + chars
    names += [f"<t{i}>" for i in range(max(0, vocab - len(names) - 1))] + ["<eos>"]  # EOS last: never sampled
    tok = Tokenizer(models.WordLevel(vocab={t: i for i, t in enumerate(names)}, unk_token="<pad>"))
    tok.pre_tokenizer = pre_tokenizers.Split("", behavior="isolated")
    tok.decoder = decoders.Fuse()
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, pad_token="<pad>", eos_token="<eos>", bos_token="<bos>")
    fast.chat_template = "{% for m in messages %}{{ m['content'] }}\n{% endfor %}"
    return fast


def fsdp2_lora_wrap(self, model, mixed_precision="no", rollout_copy=True):
    """The alternative to DDP for LoRA, for ``--lora-sharding fsdp2`` (issue 18 asks for the
    measured better one): ``fully_shard`` per decoder layer and the root over the peft
    model (frozen base and adapter sharded alike), and, since the engine must decode from
    whole weights without collectives, a full rollout copy refreshed after each step, as
    for full fine-tuning."""
    import copy

    from torch.distributed.fsdp import MixedPrecisionPolicy, fully_shard

    from rewardkit_trainer.distributed import LogprobHead
    from rewardkit_trainer.models import unwrap

    if not self.enabled:
        return model
    self.fsdp = True
    self._rollout_copy = copy.deepcopy(model).requires_grad_(False)
    for layer in unwrap(model).model.layers:
        fully_shard(layer, mp_policy=MixedPrecisionPolicy())
    head = LogprobHead(model)
    fully_shard(head, mp_policy=MixedPrecisionPolicy())
    return head


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", required=True)
    ap.add_argument("--hidden", type=int, default=64)
    ap.add_argument("--layers", type=int, default=2)
    ap.add_argument("--vocab", type=int, default=512)
    ap.add_argument("--lora", action="store_true")
    ap.add_argument("--prompts", type=int, default=4, help="global prompts per step")
    ap.add_argument("--gens", type=int, default=4)
    ap.add_argument("--tokens", type=int, default=32)
    ap.add_argument("--steps", type=int, default=4)
    ap.add_argument("--dtype", default="float32")
    ap.add_argument("--lora-sharding", choices=["ddp", "fsdp2"], default="ddp",
                    help="ddp: the trainer's own choice; fsdp2: fsdp2_lora_wrap")
    args = ap.parse_args()
    if args.lora and args.lora_sharding == "fsdp2":
        from rewardkit_trainer.distributed import Parallel

        Parallel.wrap = fsdp2_lora_wrap
    from transformers import LlamaConfig, LlamaForCausalLM

    from rewardkit_trainer.config import GRPOConfig
    from rewardkit_trainer.trainer import GRPOTrainer

    tok = tokenizer(args.vocab)
    torch.manual_seed(0)
    heads = max(1, args.hidden // 64) if args.hidden >= 64 else 4
    cfg = LlamaConfig(vocab_size=len(tok) - 1, hidden_size=args.hidden, intermediate_size=int(2.75 * args.hidden),
                      num_hidden_layers=args.layers, num_attention_heads=heads, num_key_value_heads=heads,
                      max_position_embeddings=4096, pad_token_id=0, bos_token_id=1, eos_token_id=None,
                      tie_word_embeddings=False)
    model = LlamaForCausalLM(cfg).to(getattr(torch, args.dtype))
    if torch.cuda.is_available():
        model.to(f"cuda:{int(os.environ.get('LOCAL_RANK', 0))}")
    if args.lora:
        from peft import LoraConfig, get_peft_model

        model = get_peft_model(model, LoraConfig(r=16, lora_alpha=32, target_modules=["q_proj", "v_proj"]))
    rows = [{"prompt": [{"role": "user", "content": f"what is {i} + {i}?"}], "answer": str(2 * i)}
            for i in range(64)]
    config = GRPOConfig(model="bench", use_peft=args.lora, dtype=args.dtype, num_generations=args.gens,
                        prompts_per_step=args.prompts, max_completion_length=args.tokens,
                        per_device_train_batch_size=args.gens * 2, max_steps=args.steps, eval_size=0,
                        output_dir=str(Path(args.out) / "run"), progress=False, report_to=["jsonl"],
                        reward="bench_worker:variety", reward_timeout=60.0, learning_rate=1e-4)
    trainer = GRPOTrainer(config, model=model, tokenizer=tok, train_rows=rows, eval_rows=[])
    refresh: list[float] = []  # the post-step gather of sharded weights into the rollout copy
    inner = trainer.parallel.refresh_rollout_model

    def timed(model):
        t = time.perf_counter()
        out = inner(model)
        if torch.cuda.is_available():
            torch.cuda.synchronize()
        refresh.append(time.perf_counter() - t)
        return out

    trainer.parallel.refresh_rollout_model = timed
    seconds, tokens, losses = [], [], []
    for _ in range(args.steps):
        t0 = time.perf_counter()
        m = trainer.train_step()
        seconds.append(time.perf_counter() - t0)
        tokens.append(m["completion_length/mean"] * args.prompts * args.gens)
        losses.append([m["loss"], m["grad_norm"]])
    peak_cuda = torch.cuda.max_memory_allocated() / 2**30 if torch.cuda.is_available() else None
    out = {"rank": trainer.parallel.rank, "world_size": trainer.parallel.world_size,
           "step_seconds": seconds, "completion_tokens": tokens, "loss_grad_norm": losses, "refresh_seconds": refresh,
           "peak_rss_gib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20,
           "peak_cuda_gib": peak_cuda}
    Path(args.out, f"rank{trainer.parallel.rank}.json").write_text(json.dumps(out))
    trainer.parallel.close()


if __name__ == "__main__":
    main()
