#!/usr/bin/env node
// Builds MobileNetV2 / ProxylessNAS-style MBConv CNNs as ONNX models without Python.
// Uses the 'onnx-proto' npm package (protobufjs-generated ONNX schema, onnx v1.10.2).
//
// Output per model into --out DIR (default ./models):
//   <name>.onnx          ONNX model, opset 13, NCHW, input 'input' [N,C,H,W], output 'logits' [N,classes]
//   <name>.json          layer list with shapes, MACs, and weight offsets into <name>.weights.bin
//   <name>.weights.bin   all initializers concatenated, float32 little-endian, same layouts as ONNX
//                        (Conv W: [Cout, Cin/group, k, k] = OIHW; Gemm W: [out, in] (transB=1); biases [C])
//
// BN is assumed already folded: every Conv has (W, B). Activation ReLU6 = Clip(x, 0, 6).
// Weights are deterministic (mulberry32 PRNG, --seed), He-uniform scaled so activations stay O(1).
//
// usage: node build_models.js [--out models] [--seed 1234] [--only mobilenetv2_224,proxyless_cpu,...]
'use strict';
const fs = require('fs');
const path = require('path');
const { onnx } = require('onnx-proto');

// ---------------------------------------------------------------- model specs
// Block entries: { e: expand ratio, c: out channels, s: stride, k: depthwise kernel }
function mbv2Blocks(width = 1.0) {
  // MobileNetV2 table (t, c, n, s); all depthwise kernels 3x3. 17 inverted-residual blocks.
  const table = [[1, 16, 1, 1], [6, 24, 2, 2], [6, 32, 3, 2], [6, 64, 4, 2], [6, 96, 3, 1], [6, 160, 3, 2], [6, 320, 1, 1]];
  const blocks = [];
  for (const [t, c, n, s] of table) {
    for (let i = 0; i < n; i++) blocks.push({ e: t, c: makeDivisible(c * width), s: i === 0 ? s : 1, k: 3 });
  }
  return blocks;
}
function makeDivisible(v, d = 8) {
  let nv = Math.max(d, Math.floor((v + d / 2) / d) * d);
  if (nv < 0.9 * v) nv += d;
  return nv;
}

// ProxylessNAS released architectures (Cai et al., ICLR 2019; the authors' net configs), ImageNet 224x224.
// stages: [out channels, ops of the stage's layers]; an op is 'k<kernel>e<expand>', 's2' marks the stride-2 first
// layer, 'Z' a skipped layer (the zero op plus the block's identity shortcut). Repeats are written out.
function proxylessBlocks(first, stages) {
  const blocks = [{ e: 1, c: first, s: 1, k: 3 }];
  for (const [c, ops] of stages) {
    for (const op of ops.split(',').map((o) => o.trim())) {
      if (op === 'Z') continue;
      const m = /^k(\d)e(\d)( s2)?$/.exec(op);
      if (!m) throw new Error(`bad op ${op}`);
      blocks.push({ e: +m[2], c, s: m[3] ? 2 : 1, k: +m[1] });
    }
  }
  return blocks;
}

const SPECS = {
  // (a) MobileNetV2 1.0, 224x224x3, 1000 classes (~300M MACs, ~3.5M params)
  mobilenetv2_224: {
    input: [3, 224, 224],
    stem: { c: 32, k: 3, s: 2 },
    blocks: mbv2Blocks(1.0),
    head: 1280,
    classes: 1000,
  },
  // (b) small ProxylessNAS-style net for 28x28x1 (Fashion-MNIST), 6 MBConv blocks, mixed k=3/5/7
  mbconv_fmnist28: {
    input: [1, 28, 28],
    stem: { c: 16, k: 3, s: 1 },
    blocks: [
      { e: 3, c: 16, s: 1, k: 3 }, // 28x28, residual
      { e: 6, c: 24, s: 2, k: 5 }, // -> 14x14
      { e: 3, c: 24, s: 1, k: 3 }, // residual
      { e: 6, c: 40, s: 2, k: 7 }, // -> 7x7
      { e: 3, c: 40, s: 1, k: 5 }, // residual
      { e: 6, c: 64, s: 1, k: 3 }, // 7x7
    ],
    head: 256,
    classes: 10,
  },
  // ProxylessNAS (mobile): stem 32, first block 16; 320M MACs
  proxyless_mobile: {
    input: [3, 224, 224],
    stem: { c: 32, k: 3, s: 2 },
    blocks: proxylessBlocks(16, [
      [32, 'k5e3 s2, k3e3, Z, Z'],
      [40, 'k7e3 s2, k3e3, k5e3, k5e3'],
      [80, 'k7e6 s2, k5e3, k5e3, k5e3'],
      [96, 'k5e6, k5e3, k5e3, k5e3'],
      [192, 'k7e6 s2, k7e6, k7e3, k7e3'],
      [320, 'k7e6'],
    ]),
    head: 1280,
    classes: 1000,
  },
  // ProxylessNAS (GPU): stem 40, first block 24; shallow and wide, 465M MACs
  proxyless_gpu: {
    input: [3, 224, 224],
    stem: { c: 40, k: 3, s: 2 },
    blocks: proxylessBlocks(24, [
      [32, 'k5e3 s2, Z, Z, Z'],
      [56, 'k7e3 s2, Z, Z, k3e3'],
      [112, 'k7e6 s2, Z, Z, k5e3'],
      [128, 'k5e6, Z, k3e3, k5e3'],
      [256, 'k7e6 s2, k7e6, k7e6, k5e6'],
      [432, 'k7e6'],
    ]),
    head: 1728,
    classes: 1000,
  },
  // ProxylessNAS (CPU): stem 40, first block 24; deep with small kernels, 439M MACs
  proxyless_cpu: {
    input: [3, 224, 224],
    stem: { c: 40, k: 3, s: 2 },
    blocks: proxylessBlocks(24, [
      [32, 'k3e6 s2, k3e3, k3e3, k3e3'],
      [48, 'k3e6 s2, k3e3, k3e3, k5e3'],
      [88, 'k3e6 s2, Z, Z, k3e3'],
      [104, 'k5e6, k3e3, k3e3, k3e3'],
      [216, 'k5e6 s2, k5e3, k5e3, k3e3'],
      [360, 'k5e6'],
    ]),
    head: 1432,
    classes: 1000,
  },
  // trivial model used only to measure the per-call JS/binding overhead of session.run()
  overhead_probe: 'probe',
};

// ---------------------------------------------------------------- helpers
function mulberry32(seed) {
  let a = seed >>> 0;
  return function () {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const AT = onnx.AttributeProto.AttributeType;
const attrInts = (name, ints) => onnx.AttributeProto.create({ name, type: AT.INTS, ints });
const attrInt = (name, i) => onnx.AttributeProto.create({ name, type: AT.INT, i });
const attrFloat = (name, f) => onnx.AttributeProto.create({ name, type: AT.FLOAT, f });

class Builder {
  constructor(name, seed) {
    this.name = name;
    this.rand = mulberry32(seed);
    this.nodes = [];
    this.inits = [];
    this.layers = [];
    this.weightOffset = 0; // in floats
    this.weightChunks = [];
    this.uid = 0;
    this.macs = 0;
    this.params = 0;
  }
  id(p) { return `${p}_${this.uid++}`; }
  tensor(name, dims, data) {
    const f32 = data instanceof Float32Array ? data : Float32Array.from(data);
    this.inits.push(onnx.TensorProto.create({
      name, dims, dataType: onnx.TensorProto.DataType.FLOAT,
      rawData: new Uint8Array(f32.buffer, f32.byteOffset, f32.byteLength),
    }));
    const entry = { name, dims, offset: this.weightOffset, count: f32.length };
    this.weightOffset += f32.length;
    this.weightChunks.push(Buffer.from(f32.buffer, f32.byteOffset, f32.byteLength));
    return entry;
  }
  uniform(n, a) {
    const out = new Float32Array(n);
    for (let i = 0; i < n; i++) out[i] = (2 * this.rand() - 1) * a;
    return out;
  }
  // x: {name, c, h, w}
  conv(x, cout, k, s, group, act, tag) {
    const cin = x.c, cpg = cin / group;
    const pad = (k - 1) >> 1;
    const ho = Math.floor((x.h + 2 * pad - k) / s) + 1;
    const wo = Math.floor((x.w + 2 * pad - k) / s) + 1;
    const fanIn = cpg * k * k;
    const a = Math.sqrt(6 / fanIn) * (act ? 1.0 : 0.5);
    const base = this.id(tag);
    const W = this.tensor(`${base}.W`, [cout, cpg, k, k], this.uniform(cout * cpg * k * k, a));
    const B = this.tensor(`${base}.B`, [cout], this.uniform(cout, 0.05));
    const out = `${base}.out`;
    this.nodes.push(onnx.NodeProto.create({
      name: base, opType: 'Conv', input: [x.name, W.name, B.name], output: [out],
      attribute: [attrInts('kernel_shape', [k, k]), attrInts('strides', [s, s]), attrInts('pads', [pad, pad, pad, pad]),
        attrInts('dilations', [1, 1]), attrInt('group', group)],
    }));
    const macs = ho * wo * cout * cpg * k * k;
    this.macs += macs; this.params += W.count + B.count;
    let y = { name: out, c: cout, h: ho, w: wo };
    if (act) y = this.relu6(y);
    this.layers.push({ op: group === 1 ? (k === 1 ? 'conv1x1' : 'conv') : 'dwconv', name: base, cin, cout, k, stride: s, pad, group,
      in: [cin, x.h, x.w], out: [cout, ho, wo], act: act ? 'relu6' : 'none', macs, W, B });
    return y;
  }
  relu6(x) {
    const out = this.id('relu6');
    this.nodes.push(onnx.NodeProto.create({ name: out, opType: 'Clip', input: [x.name, 'clip_min', 'clip_max'], output: [out] }));
    return { ...x, name: out };
  }
  add(a, b) {
    const out = this.id('add');
    this.nodes.push(onnx.NodeProto.create({ name: out, opType: 'Add', input: [a.name, b.name], output: [out] }));
    this.layers.push({ op: 'add', name: out, shape: [a.c, a.h, a.w] });
    return { ...a, name: out };
  }
  mbconv(x, blk, idx) {
    const hid = x.c * blk.e;
    let y = x;
    if (blk.e !== 1) y = this.conv(y, hid, 1, 1, 1, true, `b${idx}_expand`);
    y = this.conv(y, hid, blk.k, blk.s, hid, true, `b${idx}_dw`);
    y = this.conv(y, blk.c, 1, 1, 1, false, `b${idx}_project`);
    if (blk.s === 1 && x.c === blk.c) y = this.add(y, x);
    return y;
  }
  head(x, head, classes) {
    let y = x;
    if (head) y = this.conv(y, head, 1, 1, 1, true, 'head_conv');
    const gap = this.id('gap');
    this.nodes.push(onnx.NodeProto.create({ name: gap, opType: 'GlobalAveragePool', input: [y.name], output: [gap] }));
    const flat = this.id('flatten');
    this.nodes.push(onnx.NodeProto.create({ name: flat, opType: 'Flatten', input: [gap], output: [flat], attribute: [attrInt('axis', 1)] }));
    this.layers.push({ op: 'gap', in: [y.c, y.h, y.w], out: [y.c] });
    const W = this.tensor('fc.W', [classes, y.c], this.uniform(classes * y.c, Math.sqrt(6 / y.c) * 0.5));
    const B = this.tensor('fc.B', [classes], this.uniform(classes, 0.05));
    this.nodes.push(onnx.NodeProto.create({
      name: 'fc', opType: 'Gemm', input: [flat, W.name, B.name], output: ['logits'],
      attribute: [attrFloat('alpha', 1), attrFloat('beta', 1), attrInt('transB', 1)],
    }));
    const macs = y.c * classes;
    this.macs += macs; this.params += W.count + B.count;
    this.layers.push({ op: 'gemm', in: y.c, out: classes, macs, W, B });
  }
  finish(inputShape, outDims) {
    // scalar clip bounds are initializers too, but kept out of weights.bin
    const scalar = (name, v) => onnx.TensorProto.create({ name, dims: [], dataType: onnx.TensorProto.DataType.FLOAT,
      rawData: new Uint8Array(Float32Array.of(v).buffer) });
    const vi = (name, dims) => onnx.ValueInfoProto.create({
      name,
      type: onnx.TypeProto.create({ tensorType: onnx.TypeProto.Tensor.create({
        elemType: onnx.TensorProto.DataType.FLOAT,
        shape: onnx.TensorShapeProto.create({ dim: dims.map((d) => typeof d === 'string'
          ? onnx.TensorShapeProto.Dimension.create({ dimParam: d })
          : onnx.TensorShapeProto.Dimension.create({ dimValue: d })) }),
      }) }),
    });
    const usesClip = this.nodes.some((n) => n.opType === 'Clip');
    const graph = onnx.GraphProto.create({
      name: this.name,
      node: this.nodes,
      initializer: usesClip ? [...this.inits, scalar('clip_min', 0), scalar('clip_max', 6)] : this.inits,
      input: [vi('input', ['N', ...inputShape])],
      output: [vi('logits', ['N', ...outDims])],
    });
    const model = onnx.ModelProto.create({
      irVersion: 7,
      opsetImport: [onnx.OperatorSetIdProto.create({ domain: '', version: 13 })],
      producerName: 'pnas/bench/ort/build_models.js',
      producerVersion: '1',
      graph,
    });
    const err = onnx.ModelProto.verify(model);
    if (err) throw new Error(err);
    return onnx.ModelProto.encode(model).finish();
  }
}

function buildNet(name, spec, seed) {
  const b = new Builder(name, seed);
  if (spec === 'probe') {
    // input [N,1,28,28] -> Flatten -> Gemm(784->10) : near-zero compute, measures call overhead
    b.nodes.push(onnx.NodeProto.create({ name: 'flatten', opType: 'Flatten', input: ['input'], output: ['flat'], attribute: [attrInt('axis', 1)] }));
    const W = b.tensor('fc.W', [10, 784], b.uniform(7840, 0.05));
    const B = b.tensor('fc.B', [10], b.uniform(10, 0.05));
    b.nodes.push(onnx.NodeProto.create({ name: 'fc', opType: 'Gemm', input: ['flat', W.name, B.name], output: ['logits'], attribute: [attrInt('transB', 1)] }));
    b.macs = 7840; b.params = 7850;
    b.layers.push({ op: 'gemm', in: 784, out: 10, macs: 7840, W, B });
    return { b, bytes: b.finish([1, 28, 28], [10]), spec: { input: [1, 28, 28], classes: 10 } };
  }
  const [c, h, w] = spec.input;
  let x = { name: 'input', c, h, w };
  x = b.conv(x, spec.stem.c, spec.stem.k, spec.stem.s, 1, true, 'stem');
  spec.blocks.forEach((blk, i) => { x = b.mbconv(x, blk, i); });
  b.head(x, spec.head, spec.classes);
  return { b, bytes: b.finish(spec.input, [spec.classes]), spec };
}

function main() {
  const args = process.argv.slice(2);
  const opt = (k, d) => { const i = args.indexOf(k); return i >= 0 ? args[i + 1] : d; };
  const outDir = opt('--out', 'models');
  const seed = parseInt(opt('--seed', '1234'), 10);
  const only = opt('--only', Object.keys(SPECS).join(',')).split(',');
  fs.mkdirSync(outDir, { recursive: true });
  for (const name of only) {
    if (!SPECS[name]) throw new Error(`unknown model ${name}; have ${Object.keys(SPECS)}`);
    const { b, bytes, spec } = buildNet(name, SPECS[name], seed);
    fs.writeFileSync(path.join(outDir, `${name}.onnx`), bytes);
    fs.writeFileSync(path.join(outDir, `${name}.weights.bin`), Buffer.concat(b.weightChunks));
    const meta = {
      name, seed, opset: 13, layout: 'NCHW', input: ['N', ...spec.input], classes: spec.classes,
      stem: spec.stem, blocks: spec.blocks, head: spec.head,
      macs_per_image: b.macs, params: b.params,
      notes: 'MACs count Conv and Gemm multiply-accumulates only (bias/Clip/Add/GAP excluded). FLOPs = 2*MACs. ' +
        'Weights: float32 LE in weights.bin at float offsets below; Conv W is OIHW [Cout,Cin/group,k,k], Gemm W is [out,in]. ' +
        'Padding is symmetric (k-1)/2; ReLU6 = Clip(0,6); residual Add when stride 1 and Cin==Cout.',
      layers: b.layers,
    };
    fs.writeFileSync(path.join(outDir, `${name}.json`), JSON.stringify(meta, null, 1));
    console.log(`${name}: ${(bytes.length / 1e6).toFixed(2)} MB onnx, ${b.nodes.length} nodes, ` +
      `params=${b.params}, MACs/image=${b.macs} (${(b.macs / 1e6).toFixed(2)} M)`);
  }
}

if (require.main === module) main();
module.exports = { SPECS, buildNet };
