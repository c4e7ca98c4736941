// dropnet -> ONNX Runtime: runs every model dropnet exported (peer_tool export) in ONNX Runtime
// (npm package onnxruntime-node, CPU) on the 1,000 Fashion-MNIST test images dropnet used, and
// compares with dropnet's logits (max abs difference <= 1e-5 of the largest |logit|).
//
// usage: node onnxruntime_check.js <dir of peer_tool export>
// Exits 77 (ctest: skipped) with a message when onnxruntime-node is not installed: run
// `npm ci` in tests/peers (CI does, in .ci/run).
const fs = require('fs');
const path = require('path');

let ort;
try {
  ort = require(path.join(__dirname, 'node_modules', 'onnxruntime-node'));
} catch (e) {
  console.log('SKIPPED: onnxruntime-node is not installed (cd tests/peers && npm ci): ' + e.message.split('\n')[0]);
  process.exit(77);
}

function readSafetensors(file) {
  const data = fs.readFileSync(file);
  const n = Number(data.readBigUInt64LE(0));
  const header = JSON.parse(data.subarray(8, 8 + n).toString('utf8'));
  const out = {};
  for (const [name, e] of Object.entries(header)) {
    if (name === '__metadata__') continue;
    if (e.dtype !== 'F32') throw new Error(`${file}: ${name} is ${e.dtype}, expected F32`);
    const [b, end] = e.data_offsets;
    const bytes = data.subarray(8 + n + b, 8 + n + end);
    const values = new Float32Array(bytes.length / 4);
    for (let i = 0; i < values.length; ++i) values[i] = bytes.readFloatLE(4 * i);
    out[name] = {shape: e.shape, values};
  }
  return out;
}

async function main(dir) {
  let ok = true;
  for (const kind of ['mlp', 'bn', 'cnn', 'zoo']) {
    const ref = readSafetensors(path.join(dir, `${kind}.logits.safetensors`));
    const session = await ort.InferenceSession.create(path.join(dir, `${kind}.onnx`));
    const input = new ort.Tensor('float32', ref.images.values, ref.images.shape);
    const result = await session.run({input});
    const got = result.output.data;
    const want = ref.logits.values;
    let diff = 0, scale = 0;
    for (let i = 0; i < want.length; ++i) {
      diff = Math.max(diff, Math.abs(got[i] - want[i]));
      scale = Math.max(scale, Math.abs(want[i]));
    }
    const pass = got.length === want.length && diff <= 1e-5 * scale;
    ok = ok && pass;
    console.log(`dropnet -> onnxruntime ${kind}: ${ref.images.shape[0]} images, max |logit| ` +
                `${scale.toPrecision(4)}, max abs difference ${diff.toPrecision(3)} ` +
                `(${(diff / scale).toPrecision(3)} relative) ${pass ? 'OK' : 'FAIL'}`);
  }
  process.exit(ok ? 0 : 1);
}

main(process.argv[2]).catch((e) => {
  console.error(e);
  process.exit(1);
});
