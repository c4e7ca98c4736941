"""dropnet -> PyTorch: loads the state_dicts dropnet saved (peer_tool export) into the same
networks built in PyTorch, with load_state_dict(strict=True), runs them on the 1,000
Fashion-MNIST test images dropnet used, and compares with dropnet's logits.

usage: dropnet_to_torch.py <dir of peer_tool export>"""
import os
import sys

from peer_common import KINDS, build, compare, forward, read_safetensors, skip

try:
    import torch
except ImportError:
    skip("python3-torch is not installed (apt-get install python3-torch)")


def main(work):
    ok = True
    for kind in KINDS:
        model = build(torch, kind, 99)
        state = read_safetensors(os.path.join(work, f"{kind}.safetensors"))
        model.load_state_dict({k: torch.from_numpy(v.copy()) for k, v in state.items()}, strict=True)
        model.eval()
        ref = read_safetensors(os.path.join(work, f"{kind}.logits.safetensors"))
        ok &= compare(f"dropnet -> torch {kind}", ref["logits"], forward(torch, model, ref["images"]))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
