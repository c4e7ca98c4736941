"""Trains the seed notebook's 784-120-60-10 ReLU network on Fashion-MNIST in PyTorch, prints
its test accuracy, and saves its state_dict as model.safetensors for the C++ side
(from_pytorch model.safetensors) to load.

usage: python3 train.py [out.safetensors] [epochs]     (Debian: apt-get install python3-torch)

torch 1.13 (Debian 12) has no safetensors module; the dozen lines of write_safetensors below
write the format (https://github.com/huggingface/safetensors#format). With the `safetensors`
package installed, safetensors.torch.save_file(model.state_dict(), path) does the same."""
import gzip
import json
import struct
import sys

import numpy as np
import torch
from torch import nn

DATA = "/usr/share/datasets/fashion-mnist"


def load(part):
    with gzip.open(f"{DATA}/{part}-images-idx3-ubyte.gz") as f:
        images = np.frombuffer(f.read(), np.uint8, offset=16).reshape(-1, 784)
    with gzip.open(f"{DATA}/{part}-labels-idx1-ubyte.gz") as f:
        labels = np.frombuffer(f.read(), np.uint8, offset=8)
    return torch.from_numpy(images.astype(np.float32) / 255), torch.from_numpy(labels.astype(np.int64))


def write_safetensors(path, state, metadata):
    header, blobs, offset = {"__metadata__": metadata}, [], 0
    for name, tensor in state.items():
        blob = tensor.detach().contiguous().numpy().astype("<f4").tobytes()
        header[name] = {"dtype": "F32", "shape": list(tensor.shape), "data_offsets": [offset, offset + len(blob)]}
        blobs.append(blob)
        offset += len(blob)
    text = json.dumps(header).encode()
    text += b" " * (-len(text) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)) + text + b"".join(blobs))


def main(path="model.safetensors", epochs=5):
    torch.manual_seed(0)
    x, y = load("train")
    x_test, y_test = load("t10k")
    model = nn.Sequential(nn.Linear(784, 120), nn.ReLU(), nn.Linear(120, 60), nn.ReLU(), nn.Linear(60, 10))
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    for epoch in range(int(epochs)):
        model.train()
        for batch in torch.randperm(len(x)).split(64):
            optimizer.zero_grad()
            nn.functional.cross_entropy(model(x[batch]), y[batch]).backward()
            optimizer.step()
        model.eval()
        with torch.no_grad():
            accuracy = (model(x_test).argmax(1) == y_test).float().mean().item()
        print(f"epoch {epoch + 1}: PyTorch test accuracy {accuracy:.4f}")
    write_safetensors(path, model.state_dict(), {"format": "pt", "torch_test_accuracy": f"{accuracy:.4f}"})
    print(f"saved {path}")


if __name__ == "__main__":
    main(*sys.argv[1:])
