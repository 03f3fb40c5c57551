// usage: node run_onnx.js MODEL.onnx INPUT.bin N [EXPECTED.bin] [--out OUTPUT.bin]
// Runs MODEL in ONNX Runtime (CPU, all optimizations) on N float32 LE samples (N 0: all the
// samples INPUT holds) and prints
// max|ort-expected| / max|expected| when EXPECTED.bin is given; --out writes ONNX Runtime's
// output as float32 LE.
'use strict';
const fs = require('fs');
const ort = require('onnxruntime-node');
const f32 = (file) => { const b = fs.readFileSync(file); return new Float32Array(b.buffer, b.byteOffset, b.byteLength / 4); };
(async () => {
  const args = process.argv.slice(2);
  const o = args.indexOf('--out');
  const outFile = o >= 0 ? args.splice(o, 2)[1] : '';
  const [model, inFile, n, expFile] = args;
  const s = await ort.InferenceSession.create(model, { executionProviders: ['cpu'], graphOptimizationLevel: 'all' });
  const x = f32(inFile), per = s.inputMetadata[0].shape.slice(1);
  const batch = parseInt(n, 10) || x.length / per.reduce((a, b) => a * b, 1); // N 0: as many as the file holds
  const dims = [batch, ...per];
  const out = await s.run({ [s.inputNames[0]]: new ort.Tensor('float32', x, dims) });
  const y = out[s.outputNames[0]].data;
  let msg = `${model}: ${s.inputNames[0]} [${dims}] -> ${s.outputNames[0]} [${out[s.outputNames[0]].dims}]`;
  if (expFile) {
    const e = f32(expFile);
    if (e.length !== y.length) throw new Error(`expected ${e.length} values, ORT gave ${y.length}`);
    let d = 0, m = 0;
    for (let i = 0; i < e.length; i++) { d = Math.max(d, Math.abs(y[i] - e[i])); m = Math.max(m, Math.abs(e[i])); }
    msg += `; max|ort-expected|/max|expected| = ${(d / m).toExponential(2)} (max|expected| ${m.toFixed(3)})`;
  }
  if (outFile) {
    fs.writeFileSync(outFile, Buffer.from(Float32Array.from(y).buffer));
    msg += `; wrote ${outFile}`;
  }
  console.log(msg);
})().catch((e) => { console.error(e.message || e); process.exit(1); });
