"""Export a training checkpoint to the Hugging Face folder models/hanoi-step/model/.

    PYTHONPATH=. python models/hanoi-step/export.py \
        --ckpt runs/hanoi-step-ckpt/last.pt --out models/hanoi-step/model

Writes config.json, model.safetensors (float32), generation_config.json, tokenizer.json,
tokenizer_config.json (with the chat template), special_tokens_map.json and
chat_template.jinja; the folder loads with AutoModelForCausalLM / AutoTokenizer offline.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common as C  # noqa: E402


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description="export hanoi-step to a HF folder")
    ap.add_argument("--ckpt", default="runs/hanoi-step-ckpt/last.pt")
    ap.add_argument("--out", default=str(C.HERE / "model"))
    ap.add_argument("--variant", choices=C.VARIANTS, default="",
                    help="tokenizer variant (default: the one the checkpoint was trained as)")
    a = ap.parse_args(argv)

    import torch
    from transformers import GenerationConfig, LlamaConfig, LlamaForCausalLM

    st = torch.load(a.ckpt, map_location="cpu", weights_only=False)
    variant = a.variant or st["args"].get("variant", "step")
    cfg = LlamaConfig.from_dict(st["config"])
    cfg.architectures = ["LlamaForCausalLM"]
    model = LlamaForCausalLM(cfg)
    model.load_state_dict(st["model"])
    model = model.float().eval()
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    model.generation_config = GenerationConfig(
        bos_token_id=C.BOS, eos_token_id=C.EOS, pad_token_id=C.PAD, do_sample=True,
        temperature=1.0, top_k=0, top_p=1.0,
        max_new_tokens=128 if variant == "think" else 64)
    model.save_pretrained(out, safe_serialization=True)

    # Keys that older transformers / vLLM releases read (newer ones write rope_parameters).
    cj_path = out / "config.json"
    cj = json.loads(cj_path.read_text())
    cj.setdefault("rope_theta", float(cfg.to_dict().get("rope_theta", 10000.0)
                                      if "rope_theta" in cfg.to_dict() else 10000.0))
    cj.setdefault("torch_dtype", "float32")
    cj_path.write_text(json.dumps(cj, indent=2) + "\n")

    tok = C.build_tokenizer(variant)
    tok.save_pretrained(out)
    # Older transformers (and vLLM) read the chat template from tokenizer_config.json and
    # may not know newer tokenizer class names: make both explicit.
    tc_path = out / "tokenizer_config.json"
    tc = json.loads(tc_path.read_text())
    tc["chat_template"] = C.CHAT_TEMPLATE
    tc["tokenizer_class"] = "PreTrainedTokenizerFast"
    tc_path.write_text(json.dumps(tc, indent=2, ensure_ascii=False) + "\n")
    (out / "chat_template.jinja").write_text(C.CHAT_TEMPLATE)
    stm = {"bos_token": "<s>", "eos_token": "</s>", "pad_token": "<pad>", "unk_token": "<unk>"}
    (out / "special_tokens_map.json").write_text(json.dumps(stm, indent=2) + "\n")
    info = {"step": st["step"], "train_minutes": round(st["elapsed"] / 60, 1),
            "params": sum(p.numel() for p in model.parameters()), "args": st["args"]}
    (out.parent / "train_info.json").write_text(json.dumps(info, indent=2) + "\n")
    print(f"exported step {st['step']} ({info['params']} params) to {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
