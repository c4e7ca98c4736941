"""PyTorch -> dropnet: builds the peer networks in PyTorch (python3-torch), writes their
state_dicts as safetensors, has dropnet load them (peer_tool forward, strict) and run them on
1,000 Fashion-MNIST test images, and compares dropnet's logits with PyTorch's.

usage: torch_to_dropnet.py <peer_tool> <work dir>"""
import os
import subprocess
import sys

from peer_common import KINDS, build, compare, forward, read_safetensors, skip, test_images, write_safetensors

try:
    import torch
except ImportError:
    skip("python3-torch is not installed (apt-get install python3-torch)")


def main(tool, work):
    os.makedirs(work, exist_ok=True)
    images = test_images()
    inputs = os.path.join(work, "torch_images.safetensors")
    write_safetensors(inputs, {"images": images})
    ok = True
    for seed, kind in enumerate(KINDS):
        model = build(torch, kind, seed)
        state = os.path.join(work, f"torch_{kind}.safetensors")
        write_safetensors(state, {k: v.numpy() for k, v in model.state_dict().items()})
        out = os.path.join(work, f"torch_{kind}.dropnet_logits.safetensors")
        subprocess.run([tool, "forward", kind, state, inputs, out], check=True)
        ok &= compare(f"torch -> dropnet {kind}", forward(torch, model, images), read_safetensors(out)["logits"])
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], sys.argv[2]))
