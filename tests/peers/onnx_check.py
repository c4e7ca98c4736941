"""The ONNX checker (python3-onnx) on every model dropnet exported (peer_tool export), with
full shape inference.

usage: onnx_check.py <dir of peer_tool export>"""
import glob
import os
import sys

try:
    import onnx
    import onnx.checker
except ImportError:
    print("SKIPPED: python3-onnx is not installed (apt-get install python3-onnx)")
    sys.exit(77)


def main(work):
    files = sorted(glob.glob(os.path.join(work, "*.onnx")))
    if not files:
        print("no .onnx files in " + work)
        return 1
    for path in files:
        model = onnx.load(path)
        onnx.checker.check_model(model, full_check=True)
        opset = [o.version for o in model.opset_import]
        print(f"onnx.checker: {os.path.basename(path)} OK (IR {model.ir_version}, opset {opset}, "
              f"{len(model.graph.node)} nodes)")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
