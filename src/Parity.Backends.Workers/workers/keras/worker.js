#!/usr/bin/env node
// Parity worker for the Keras Layers API of TensorFlow.js (docs/worker-protocol.md, protocol 2).
//
// One JSON request per stdin line, one JSON response per stdout line; everything else goes to stderr.
// The canonical spec is mapped to Keras conventions here (worker side), and what TF.js cannot express
// exactly is declared in the build response as a mismatch:
//   - Dense kernel is [in, out]: the transpose of the canonical [out, in] weight [JS].
//   - BatchNormalization momentum is the weight of the OLD running value: keras = 1 - canonical [JS].
//   - TF.js stores the biased batch variance in the moving variance [JS, measured]: "unbiased" is a mismatch.
//   - tf.train.adam adds eps to sqrt(v_hat) [JS]: "epsilonHat" is a mismatch.
//   - tf.train.adam keeps beta1^t and beta2^t as float32 running products (accBeta1, accBeta2) while it scales the
//     gradient by 1 - beta taken from the JS number [JS]: the spec's betaPrecision "float32"; "float64" is a mismatch
//     (at beta2 = 0.999 its first steps move 6.4e-6 relative less: docs/conventions.md section 3).
//   - tf.train.momentum is v = mu v + g; p += -lr v (momentum_optimizer.js): exactly the PyTorch form.
//   - RMSprop and Adagrad run through tf.train.rmsprop and tf.train.adagrad where those compute the spec exactly, else
//     through Parity's update written in TF.js ops (buildRmspropOrAdagrad): no RMSprop or Adagrad setting is a mismatch.
//   - tf.train.momentum is v = mu v + g; p += -lr v (momentum_optimizer.js): exactly the PyTorch form; its Nesterov
//     step p += -lr (g + mu v) is PyTorch's too. The Keras momentum form rescales v by lr_prev / lr when the rate changes.
//   - TF.js has no learning-rate schedules and no gradient clipping: the schedule's rate is set before every update
//     (setLearningRate, or Adam's learningRate), and clipping is done here with TF.js ops on the gradients.
//   - Activations: the LeakyReLU slope is always passed (the layer's default is 0.3); the ELU layer implements only
//     alpha = 1, so another alpha is a mismatch [JSa].
//   - Weight decay (tf.train optimizers take no weight_decay=): the loss term is TF.js's own regularizers.l2 added to
//     the loss inside variableGrads, as Keras adds a kernel_regularizer's loss; coupled decay adds wd*p to the gradients
//     handed to applyGradients (the traced gradients stay the loss's); decoupled decay writes p - p*wd*lr (or p - p*wd)
//     into each decayed variable just before applyGradients, Keras's own weight_decay step.
//   - Dropout (p the drop probability, Keras's rate) is applied in training as h * (m * 1/(1-p)), the product TF.js's
//     own dropout forms (floor(U + keep) / keep, then multiplied in), with the harness's mask m; under masks:
//     framework m is TF.js's own draw (tf.dropout of ones, seeded per step and call), declared. Eval: the Dropout layer
//     (the identity there).
//   - The loss is computed here as -mean(sum(onehot * logSoftmax(logits))) (log-sum-exp), not with the
//     layers loss categoricalCrossentropy, which clips softmax to [eps, 1-eps] even from logits
//     (docs/conventions.md section 4).
//   - The other losses are tfjs-core's tf.losses (ops/losses/*.js), each with its default reduction
//     SUM_BY_NONZERO_WEIGHTS, which without weights is sum / number of loss entries: softmaxCrossEntropy (one entry
//     per sample, so the mean over samples; labelSmoothing mixes onehot (1-e) + e/C, the spec's form),
//     meanSquaredError and sigmoidCrossEntropy (one entry per element, so the mean over ALL elements; the latter in
//     the fused max(z,0) - z y + log1p(exp(-|z|)) form). Exact mappings, nothing declared.
'use strict';

// Exits as soon as the harness is gone, even in the middle of a step (docs/worker-protocol.md, "Process lifetime"):
// the harness is the parent, so its death re-parents the worker. Polled from a worker thread, because the main
// thread blocks in TF.js compute for the length of a step.
new (require('worker_threads').Worker)(`
  const parent = process.ppid;
  setInterval(() => { if (process.ppid !== parent) process.kill(process.pid, 'SIGKILL'); }, 1000);
`, { eval: true }).unref();

const os = require('os');
const fs = require('fs');
const readline = require('readline');

const PROTOCOL = 2;
// Where and above which size (raw bytes) answers carry tensors as files; set by build (docs/worker-protocol.md).
const exchange = { directory: null, threshold: null, count: 0 };
const KERAS_TRUNCATION_CORRECTION = 0.87962566103423978; // std of N(0,1) truncated to [-2, 2] [K2]

function log(...args) { console.error('[keras]', ...args); }

// Parity's RMSprop and Adagrad (docs/spec.md, "RMSprop" and "Adagrad") written in TF.js ops: the backend's own float32
// kernels, used only for the settings tf.train.rmsprop and tf.train.adagrad cannot express (buildRmspropOrAdagrad). The
// order of operations is the reference's; the slots carry their canonical names and values, and getWeights answers in
// the shape of a TF.js optimizer's ({name: 'iter'} first, then '<variable>/<slot>').
class CanonicalAdaptiveOptimizer {
  constructor(opt) {
    this.opt = opt;
    this.learningRate = opt.lr; // the schedule's rate, set before every update (prepareUpdate), as on a TF.js optimizer
    this.iterations = 0;
    this.slotVariables = new Map();
  }

  slot(variable, name, initial) {
    const key = `${variable.name}/${name}`;
    if (!this.slotVariables.has(key)) this.slotVariables.set(key, tf.tidy(() => tf.fill(variable.shape, initial).variable(false)));
    return this.slotVariables.get(key);
  }

  applyGradients(gradients) {
    const o = this.opt;
    const denominator = s => (o.epsilonPlacement === 'inside' ? tf.sqrt(tf.add(s, o.eps)) : tf.add(tf.sqrt(s), o.eps));
    for (const [name, g] of Object.entries(gradients)) {
      const value = tf.engine().registeredVariables[name];
      if (o.type === 'rmsprop') {
        const ms = this.slot(value, 'meanSquare', o.meanSquareInit);
        const mg = o.centered ? this.slot(value, 'meanGradient', 0) : null;
        const b = o.momentum > 0 ? this.slot(value, 'momentum', 0) : null;
        tf.tidy(() => {
          ms.assign(tf.add(tf.mul(ms, o.rho), tf.mul(tf.square(g), 1 - o.rho)));
          let s = ms;
          if (mg) {
            mg.assign(tf.add(tf.mul(mg, o.rho), tf.mul(g, 1 - o.rho)));
            s = tf.sub(ms, tf.square(mg));
          }
          const step = tf.div(g, denominator(s));
          if (b) {
            b.assign(tf.add(tf.mul(b, o.momentum), step));
            value.assign(tf.sub(value, tf.mul(b, this.learningRate)));
          } else {
            value.assign(tf.sub(value, tf.mul(step, this.learningRate)));
          }
        });
      } else {
        const acc = this.slot(value, 'accumulator', o.initialAccumulator);
        tf.tidy(() => {
          acc.assign(tf.add(acc, tf.square(g)));
          value.assign(tf.sub(value, tf.mul(tf.div(g, denominator(acc)), this.learningRate)));
        });
      }
    }
    this.iterations++;
  }

  async getWeights() {
    return [{ name: 'iter', tensor: tf.scalar(this.iterations, 'int32') }]
      .concat([...this.slotVariables].map(([name, tensor]) => ({ name, tensor })));
  }
}


// The spec's learning rate of update k (0-based; docs/spec.md "Learning-rate schedules"), in float64 like the harness.
function learningRate(schedule, lr, k) {
  switch (schedule.type) {
    case 'constant': return lr;
    case 'step': return lr * Math.pow(schedule.gamma, Math.floor(k / schedule.stepSize));
    case 'exponential': return lr * Math.pow(schedule.rate, schedule.staircase ? Math.floor(k / schedule.decaySteps) : k / schedule.decaySteps);
    case 'cosine': {
      const t = Math.min(k, schedule.decaySteps) / schedule.decaySteps;
      return schedule.minLr + (lr - schedule.minLr) * (1 + Math.cos(Math.PI * t)) / 2;
    }
    default: throw new WorkerError(`optimizer.schedule: unsupported type '${schedule.type}'`);
  }
}

// New clipped gradients (by variable name) in TF.js ops: a norm scope scales by min(1, maxNorm / (norm + eps)), the
// global norm taken as the norm of the per-tensor norms as torch's clip_grad_norm_ does; by value, clipByValue.
function clipGradients(grads, clip) {
  const names = Object.keys(grads);
  return tf.tidy(() => {
    if (clip.type === 'value') return Object.fromEntries(names.map(n => [n, tf.clipByValue(grads[n], -clip.value, clip.value)]));
    const scale = norm => tf.minimum(1, tf.div(clip.maxNorm, tf.add(norm, clip.eps)));
    const norms = names.map(n => tf.norm(grads[n]));
    const global = clip.type === 'globalNorm' ? scale(tf.norm(tf.stack(norms))) : null;
    return Object.fromEntries(names.map((n, i) => [n, tf.mul(grads[n], global ?? scale(norms[i]))]));
  });
}

class WorkerError extends Error {}

let tf;
try {
  tf = require('@tensorflow/tfjs');
  require('@tensorflow/tfjs-backend-wasm');
} catch (e) {
  log(`cannot load @tensorflow/tfjs (${e.message}); run scripts/setup (npm ci in workers/keras)`);
  process.exit(3);
}

if (os.endianness() !== 'LE') { log('this worker assumes a little-endian host'); process.exit(3); }

function encode(t) {
  const values = t.dataSync();
  return encodeArray(values instanceof Float32Array ? values : Float32Array.from(values), t.shape);
}

function encodeArray(f32, shape) {
  const bytes = Buffer.from(f32.buffer, f32.byteOffset, f32.byteLength);
  if (exchange.directory && exchange.threshold != null && bytes.length > exchange.threshold) {
    const file = `${exchange.directory}/answer-${process.pid}-${++exchange.count}.bin`;
    fs.writeFileSync(file, bytes);
    return { dtype: 'float32', shape, file };
  }
  return { dtype: 'float32', shape, data: bytes.toString('base64') };
}

function decode(obj, what) {
  if (!obj || typeof obj !== 'object' || !Array.isArray(obj.shape)) throw new WorkerError(`${what}: malformed tensor`);
  let buf;
  if (typeof obj.data === 'string') buf = Buffer.from(obj.data, 'base64');
  else if (typeof obj.file === 'string') buf = fs.readFileSync(obj.file);
  else throw new WorkerError(`${what}: tensor has neither data nor file`);
  const count = obj.shape.reduce((a, b) => a * b, 1);
  let values;
  if (obj.dtype === 'float32') {
    if (buf.length !== count * 4) throw new WorkerError(`${what}: ${buf.length} bytes do not fill shape [${obj.shape}] of float32`);
    // Copy into an aligned buffer (a Buffer's offset into its pool need not be a multiple of 4).
    values = new Float32Array(count);
    new Uint8Array(values.buffer).set(buf);
  } else if (obj.dtype === 'float64') {
    // float64 values (from a float64 load_state) narrowed to float32: the initial state is float32-exact.
    if (buf.length !== count * 8) throw new WorkerError(`${what}: ${buf.length} bytes do not fill shape [${obj.shape}] of float64`);
    values = new Float32Array(count);
    for (let i = 0; i < count; i++) values[i] = buf.readDoubleLE(i * 8);
  } else {
    throw new WorkerError(`${what}: unsupported dtype '${obj.dtype}'`);
  }
  return tf.tensor(values, obj.shape, 'float32');
}

// Framework init: the spec's initializer names mapped to TF.js initializers with the same distribution.
// tf.initializers.heNormal is NOT used for he_normal: TF.js heNormal is a normal truncated at 2 sigma with
// sigma = sqrt(2/fan_in) and no 0.8796 correction (final std ~0.88 sqrt(2/fan_in)) [JS], which is neither
// PyTorch's untruncated kaiming_normal nor Keras's corrected he_normal. Each linear layer k (0-based,
// counting linear layers only) seeds its kernel with init.seed + 2k and its bias with init.seed + 2k + 1.
function initializer(init, fanIn, fanOut, seed) {
  switch (init.type) {
    case 'zeros': return tf.initializers.zeros();
    case 'ones': return tf.initializers.ones();
    case 'he_normal': return tf.initializers.randomNormal({ mean: 0, stddev: Math.sqrt(2 / fanIn), seed });
    case 'he_normal_truncated':
      // TF.js truncatedNormal truncates at 2 stddev, so pass the Keras-corrected sigma.
      return tf.initializers.truncatedNormal({ mean: 0, stddev: Math.sqrt(2 / fanIn) / KERAS_TRUNCATION_CORRECTION, seed });
    case 'lecun_normal': return tf.initializers.randomNormal({ mean: 0, stddev: Math.sqrt(1 / fanIn), seed });
    case 'glorot_uniform': return tf.initializers.glorotUniform({ seed });
    case 'pytorch_default': {
      const b = 1 / Math.sqrt(fanIn);
      return tf.initializers.randomUniform({ minval: -b, maxval: b, seed });
    }
    case 'normal': return tf.initializers.randomNormal({ mean: 0, stddev: init.std, seed });
    default: throw new WorkerError(`unknown initializer '${init.type}'`);
  }
}

class Model {
  constructor(spec) {
    this.spec = spec;
    this.mismatches = [];
    // The canonical JSON writes the default loss as its bare name.
    this.loss = typeof spec.loss === 'string' ? { type: spec.loss, labelSmoothing: 0, targets: 'labels' } : spec.loss;
    this.hasAccuracy = this.loss.targets === 'labels';
    const frameworkInit = spec.init.mode === 'framework';
    const seedBase = Number(spec.init.seed) % 2147483647;
    this.layers = new Map();      // instance name -> { spec, layer }
    this.params = [];             // { name, variable (LayerVariable), transpose, trainable }
    this.batchnorms = [];         // { name, layer }
    let linearIndex = 0;
    let width = spec.model.inputs;
    const widths = new Map();
    for (const call of spec.model.calls) {
      const ls = spec.model.layers.find(l => l.name === call.layer);
      if (!widths.has(ls.name)) widths.set(ls.name, width);
      if (ls.type === 'linear') width = ls.out;
    }
    for (const ls of spec.model.layers) {
      let layer;
      switch (ls.type) {
        case 'linear': {
          const args = { units: ls.out, useBias: ls.bias, name: ls.name };
          if (frameworkInit) {
            args.kernelInitializer = initializer(ls.init.weight, ls.in, ls.out, seedBase + 2 * linearIndex);
            if (ls.bias) args.biasInitializer = initializer(ls.init.bias, ls.in, ls.out, seedBase + 2 * linearIndex + 1);
          }
          linearIndex++;
          layer = tf.layers.dense(args);
          break;
        }
        case 'batchnorm':
          // Keras momentum weighs the old value: keras = 1 - canonical [JS]. TF.js BatchNormalization
          // cannot train with center/scale off (it reads gamma and beta unconditionally), so a
          // non-affine batchnorm keeps gamma = 1 and beta = 0 frozen, which is exactly no affine step.
          layer = tf.layers.batchNormalization({ axis: -1, momentum: 1 - ls.momentum, epsilon: ls.eps, name: ls.name });
          if (ls.runningVariance === 'unbiased') {
            this.mismatches.push({
              setting: `model.layers[${ls.name}].runningVariance`,
              spec: 'unbiased (N/(N-1)) batch variance into the running variance',
              backend: 'TF.js BatchNormalization stores the biased (1/N) batch variance (normalization.js, doMovingAverage)',
              value: 'biased',
              affects: ['runningVariance', 'evalOutput', 'evalLoss', 'evalAccuracy'],
            });
          }
          break;
        case 'layernorm':
          layer = tf.layers.layerNormalization({ axis: -1, epsilon: ls.eps, center: ls.affine, scale: ls.affine, name: ls.name });
          break;
        case 'relu':
          layer = tf.layers.reLU({ name: ls.name });
          break;
        case 'identity':
          layer = tf.layers.activation({ activation: 'linear', name: ls.name });
          break;
        case 'tanh':
        case 'sigmoid':
          layer = tf.layers.activation({ activation: ls.type, name: ls.name });
          break;
        case 'silu':
          // 'swish' is x * sigmoid(alpha x) with alpha 1 (activations.js): SiLU.
          layer = tf.layers.activation({ activation: 'swish', name: ls.name });
          break;
        case 'gelu':
          // 'gelu' is x/2 (1 + erf(x / sqrt 2)); 'gelu_new' the tanh form (activations.js) [JSa].
          layer = tf.layers.activation({ activation: ls.approximation === 'exact' ? 'gelu' : 'gelu_new', name: ls.name });
          break;
        case 'leaky_relu':
          // The layer's own default slope is 0.3 [JSa]: always pass the spec's.
          layer = tf.layers.leakyReLU({ alpha: ls.slope, name: ls.name });
          break;
        case 'elu':
          // The TF.js ELU layer throws for any alpha but 1 (advanced_activations.js) [JSa]: it runs alpha 1, declared.
          layer = tf.layers.elu({ name: ls.name });
          if (ls.alpha !== 1) {
            this.mismatches.push({
              setting: `model.layers[${ls.name}].alpha`,
              spec: `ELU alpha ${ls.alpha}`,
              backend: 'the TF.js ELU layer implements only alpha = 1 (advanced_activations.js)',
              value: 1,
              affects: ['forward', 'loss', 'trainAccuracy', 'outputGradient', 'parameterGradient', 'optimizerSlot', 'parameter',
                'batchMean', 'batchVariance', 'runningMean', 'runningVariance', 'evalOutput', 'evalLoss', 'evalAccuracy'],
            });
          }
          break;
        case 'dropout':
          // Applied by the layer in eval only (the identity); the training step multiplies by the mask it traces.
          layer = tf.layers.dropout({ rate: ls.p, name: ls.name });
          if (ls.masks === 'framework') {
            this.mismatches.push({
              setting: `model.layers[${ls.name}].masks`,
              spec: `framework: '${ls.name}' drops with probability ${ls.p} using each framework's own RNG (the reference applies the harness's masks)`,
              backend: "TF.js's own draw (tf.dropout of ones, floor(U + keep)): another mask than the harness's and any other framework's; the trajectory differs from the dropout on by design",
              value: 'framework',
              affects: ['dropoutMask', 'forward', 'batchMean', 'batchVariance', 'loss', 'trainAccuracy', 'outputGradient', 'parameterGradient',
                'runningMean', 'runningVariance', 'optimizerSlot', 'parameter', 'evalOutput', 'evalLoss', 'evalAccuracy'],
            });
          }
          break;
        default:
          throw new WorkerError(`model.layers[${ls.name}]: unsupported layer type '${ls.type}'`);
      }
      // Build with the input width of the instance's first call so weights exist before load_state.
      layer.build([null, widths.get(ls.name) ?? ls.features ?? ls.in]);
      this.layers.set(ls.name, { spec: ls, layer });
      if (ls.type === 'linear') {
        this.params.push({ name: `${ls.name}.weight`, variable: layer.kernel, transpose: true, trainable: true });
        if (ls.bias) this.params.push({ name: `${ls.name}.bias`, variable: layer.bias, transpose: false, trainable: true });
      } else if (ls.type === 'batchnorm') {
        if (ls.affine) {
          this.params.push({ name: `${ls.name}.gamma`, variable: layer.gamma, transpose: false, trainable: true });
          this.params.push({ name: `${ls.name}.beta`, variable: layer.beta, transpose: false, trainable: true });
        } else {
          layer.gamma.trainable = false;
          layer.beta.trainable = false;
        }
        this.batchnorms.push({ name: ls.name, layer });
      } else if (ls.type === 'layernorm' && ls.affine) {
        this.params.push({ name: `${ls.name}.gamma`, variable: layer.gamma, transpose: false, trainable: true });
        this.params.push({ name: `${ls.name}.beta`, variable: layer.beta, transpose: false, trainable: true });
      }
    }
    this.calls = spec.model.calls.map(c => ({ id: c.id, layer: c.layer, isBn: this.layers.get(c.layer).spec.type === 'batchnorm' }));
    const opt = spec.optimizer;
    if (opt.type === 'sgd') {
      // momentum_optimizer.js: acc = m*acc + g; p = p - lr*acc, accumulators start at zero: the PyTorch form.
      this.optimizer = tf.train.momentum(opt.lr, opt.momentum, opt.nesterov ?? false);
      this.slots = opt.momentum > 0 ? ['momentum'] : [];
    } else if (opt.type === 'adam') {
      this.optimizer = tf.train.adam(opt.lr, opt.beta1, opt.beta2, opt.eps);
      this.slots = ['m', 'v'];
      if ((opt.betaPrecision ?? 'float64') === 'float64') {
        this.mismatches.push({
          setting: 'optimizer.betaPrecision',
          spec: 'float64: decay beta, gradient scale 1 - beta and bias correction 1 - beta^t all from the written betas',
          backend: 'tf.train.adam bias-corrects with float32 running products of beta (accBeta1, accBeta2 in adam_optimizer.js)',
          value: 'float32',
          affects: ['optimizerSlot', 'parameter'],
        });
      }
      if (opt.epsilonForm === 'epsilonHat') {
        this.mismatches.push({
          setting: 'optimizer.epsilonForm',
          spec: 'epsilonHat: lr*sqrt(1-b2^t)/(1-b1^t) * m/(sqrt(v)+eps)',
          backend: 'tf.train.adam adds eps to sqrt(v_hat) (adam_optimizer.js)',
          value: 'sqrtVHat',
          affects: ['forward', 'batchMean', 'batchVariance', 'loss', 'outputGradient', 'parameterGradient',
            'runningMean', 'runningVariance', 'optimizerSlot', 'parameter', 'evalOutput', 'evalLoss', 'evalAccuracy'],
        });
      }
    } else if (opt.type === 'rmsprop' || opt.type === 'adagrad') {
      this.buildRmspropOrAdagrad(opt);
    } else {
      throw new WorkerError(`optimizer: unsupported type '${opt.type}'`);
    }
    this.decay = opt.weightDecay ?? null;
    this.schedule = opt.schedule ?? { type: 'constant' };
    learningRate(this.schedule, opt.lr, 0); // refuses an unknown schedule type before training
    this.updates = 0;
    this.probes = null;
  }

  // tf.train.rmsprop and tf.train.adagrad where they compute the spec exactly [JSc]; Parity's own update written in
  // TF.js ops (CanonicalAdaptiveOptimizer) for the settings they cannot express, so no setting is a mismatch here:
  //   - tf.train.rmsprop puts eps inside the square root, starts the mean square at zeros, and its centered form takes
  //     sqrt(ms - mg^2 - eps), eps SUBTRACTED. It keeps mom = mu mom + lr g / d (TF form): lr times the canonical
  //     buffer b under a constant lr, but b read back as mom / lr is off by several float32 roundings (measured: 1e-6
  //     relative, beyond the step check's float32 envelope), so with momentum the update in TF.js ops is used.
  //   - tf.train.adagrad starts the accumulator at any value but always adds the backend's eps (1e-7) inside the square root.
  buildRmspropOrAdagrad(opt) {
    const inside = opt.epsilonPlacement === 'inside';
    // Slot variables are created at the first applyGradients; before it a slot holds its initial value.
    if (opt.type === 'rmsprop') {
      this.slots = ['meanSquare'].concat(opt.momentum > 0 ? ['momentum'] : [], opt.centered ? ['meanGradient'] : []);
      this.slotSources = { meanSquare: { initial: opt.meanSquareInit } };
      if (inside && opt.meanSquareInit === 0 && opt.momentum === 0 && (!opt.centered || opt.eps === 0)) {
        this.optimizer = tf.train.rmsprop(opt.lr, opt.rho, 0, opt.eps, opt.centered);
        this.slotSources = { meanSquare: { name: 'rms' }, meanGradient: { name: 'mg' } };
        return;
      }
    } else {
      this.slots = ['accumulator'];
      this.slotSources = { accumulator: { initial: opt.initialAccumulator } };
      if (inside && opt.eps === tf.backend().epsilon()) {
        this.optimizer = tf.train.adagrad(opt.lr, opt.initialAccumulator);
        return;
      }
    }
    this.optimizer = new CanonicalAdaptiveOptimizer(opt);
  }

  // Whether weight decay applies to the parameter: every one, or the linear weights alone (a kernel_regularizer).
  decayed(p) {
    return this.decay !== null && p.trainable && (this.decay.parameters === 'all' || p.name.endsWith('.weight'));
  }

  // The L2 loss term, coefficient * sum(w^2) per decayed parameter, with tf.regularizers.l2 (what a layer's
  // kernelRegularizer adds to fit's loss); a scalar to add inside variableGrads, or null.
  lossTerm() {
    if (this.decay === null || this.decay.form !== 'l2Loss') return null;
    const l2 = tf.regularizers.l2({ l2: this.decay.coefficient });
    const terms = this.params.filter(p => this.decayed(p)).map(p => l2.apply(p.variable.read()));
    return terms.length === 0 ? null : terms.reduce((a, b) => tf.add(a, b));
  }

  // Coupled decay: the gradient the optimizer is handed, g + wd * p (PyTorch's weight_decay=); otherwise g.
  decayedGradient(p, g) {
    if (this.decay === null || this.decay.form !== 'coupled' || !this.decayed(p)) return g;
    return tf.add(g, tf.mul(p.variable.read(), this.decay.rate));
  }

  // Decoupled decay, before the optimizer's update, from the pre-update p: p - p * wd * lr (Keras's weight_decay step;
  // p - p * wd when not multiplied by the learning rate, TF1 contrib AdamW).
  applyDecoupledDecay() {
    if (this.decay === null || this.decay.form !== 'decoupled') return;
    const lr = learningRate(this.schedule, this.spec.optimizer.lr, this.updates);
    const factor = this.decay.multiplyByLearningRate ? this.decay.rate * lr : this.decay.rate;
    for (const p of this.params) {
      if (!this.decayed(p)) continue;
      const shrunk = tf.tidy(() => { const w = p.variable.read(); return tf.sub(w, tf.mul(w, factor)); });
      p.variable.write(shrunk);
      shrunk.dispose();
    }
  }

  // Sets the learning rate of update k = this.updates (0-based) and, in the Keras momentum form, rescales each
  // momentum accumulation v by lr_prev / lr (m = mu m - lr g; p += m is v = mu (lr_prev / lr) v + g; p -= lr v with
  // v = -m / lr). MomentumOptimizer extends SGDOptimizer (setLearningRate keeps c = -lr); Adam reads learningRate.
  prepareUpdate() {
    const opt = this.spec.optimizer;
    const lr = learningRate(this.schedule, opt.lr, this.updates);
    const previous = this.updates > 0 ? learningRate(this.schedule, opt.lr, this.updates - 1) : lr;
    if (opt.type === 'sgd') this.optimizer.setLearningRate(lr);
    else this.optimizer.learningRate = lr;
    if (opt.type === 'sgd' && opt.momentumForm === 'keras' && previous !== lr) {
      for (const a of this.optimizer.accumulations ?? []) {
        if (a) a.variable.assign(tf.tidy(() => tf.mul(a.variable, previous / lr)));
      }
    }
  }

  loadState(entries) {
    const params = new Map(this.params.map(p => [p.name, p]));
    const bns = new Map(this.batchnorms.map(b => [b.name, b.layer]));
    for (const e of entries) {
      const what = `${e.kind}:${e.site}`;
      let target, transpose = false;
      if (e.kind === 'parameter' && params.has(e.site)) { target = params.get(e.site).variable; transpose = params.get(e.site).transpose; }
      else if (e.kind === 'runningMean' && bns.has(e.site)) target = bns.get(e.site).movingMean;
      else if (e.kind === 'runningVariance' && bns.has(e.site)) target = bns.get(e.site).movingVariance;
      else throw new WorkerError(`load_state: unknown entry ${what}`);
      tf.tidy(() => {
        let t = decode(e.tensor, what);
        if (transpose) t = t.transpose();
        if (t.shape.join(',') !== target.shape.join(',')) throw new WorkerError(`load_state: ${what} has shape [${t.shape}]; the layer has [${target.shape}]`);
        target.write(t);
      });
    }
  }

  stateEntries() {
    const out = this.params.map(p => ({ kind: 'parameter', site: p.name, tensor: tf.tidy(() => encode(p.transpose ? p.variable.read().transpose() : p.variable.read())) }));
    for (const { name, layer } of this.batchnorms) {
      out.push({ kind: 'runningMean', site: name, tensor: encode(layer.movingMean.read()) });
      out.push({ kind: 'runningVariance', site: name, tensor: encode(layer.movingVariance.read()) });
    }
    return out;
  }

  // The update count and every slot wanted, read with the optimizer's public getWeights(): first {name: 'iter'} (a new
  // int32 scalar of the iteration count, disposed here), then one live variable per trainable variable and slot, named
  // '<variable>/m' and '<variable>/v' (adam_optimizer.js) or '<variable>/momentum' (momentum_optimizer.js): TF.js's slot
  // names are the canonical ones. They are created at the first applyGradients, so before it the slots are zeros. The
  // moments are the canonical biased m and v: adam_optimizer.js assigns newFirstMoment = b1 m + (1 - b1) g and
  // newSecondMoment = b2 v + (1 - b2) g^2 to them and divides by 1 - b^t only for the update (its b^t is a running
  // product accBeta, not pow); momentum_optimizer.js keeps acc = mu acc + g, PyTorch's momentum_buffer. A kernel's slots
  // are [in, out] like the kernel and are transposed like it.
  async optimizerEntries(want) {
    const weights = await this.optimizer.getWeights();
    const count = weights[0].tensor.dataSync()[0];
    weights[0].tensor.dispose();
    const out = [];
    if (want.has('optimizerStep')) out.push({ kind: 'optimizerStep', site: '', tensor: encodeArray(Float32Array.of(count), []) });
    if (!want.has('optimizerSlot')) return out;
    const byName = new Map(weights.slice(1).map(w => [w.name, w.tensor]));
    for (const p of this.params) {
      for (const slot of this.slots) {
        // TF.js's name for the slot and the value before the first update, where they differ from the canonical ones.
        const source = (this.slotSources ?? {})[slot] ?? {};
        const value = byName.get(`${p.variable.read().name}/${source.name ?? slot}`);
        out.push({
          kind: 'optimizerSlot', site: `${p.name}/${slot}`,
          tensor: tf.tidy(() => {
            const t = value ?? tf.fill(p.variable.read().shape, source.initial ?? 0);
            return encode(p.transpose ? t.transpose() : t);
          }),
        });
      }
    }
    return out;
  }

  // Zero variables added to each call output: d loss / d probe = d loss / d output, and x + 0 is exact.
  probesFor(batch) {
    if (this.probes && this.probes.batch === batch) return this.probes.vars;
    if (this.probes) this.probes.vars.forEach(v => v.dispose());
    let width = this.spec.model.inputs;
    const vars = this.calls.map(c => {
      const ls = this.layers.get(c.layer).spec;
      if (ls.type === 'linear') width = ls.out;
      return tf.variable(tf.zeros([batch, width]), true);
    });
    this.probes = { batch, vars };
    return vars;
  }

  // The 0/1 mask of every dropout call at `step` (drawn before the gradient tape, which has no gradient for the draw):
  // the harness's, or TF.js's own draw under masks: framework. Adds the drawn masks to `owned` for disposal.
  dropoutMasks(rows, step, masks, owned) {
    const out = new Map();
    let width = this.spec.model.inputs;
    this.calls.forEach((c, i) => {
      const ls = this.layers.get(c.layer).spec;
      if (ls.type === 'linear') width = ls.out;
      if (ls.type !== 'dropout') return;
      if (ls.masks === 'framework') {
        // TF.js's dropout op on ones: nonzero where it kept. Seeded per step and call so a run repeats (an unseeded
        // draw would use Math.random).
        const seed = (Number(this.spec.seed) * 7919 + step * 131 + i) % 2147483647;
        const drawn = tf.tidy(() => tf.cast(tf.notEqual(tf.dropout(tf.ones([rows, width]), ls.p, null, seed), 0), 'float32'));
        owned.push(drawn);
        out.set(c.id, drawn);
      } else if (masks.has(c.id)) {
        out.set(c.id, masks.get(c.id));
      } else {
        throw new WorkerError(`dropout call '${c.id}': the step carries no mask for it`);
      }
    });
    return out;
  }

  // The float targets of an element-wise loss [rows, outputs] (one-hot labels, the inputs, or the batch's own), or null.
  targets(x, labels, given) {
    if (this.loss.type === 'softmax_cross_entropy') return null;
    if (this.loss.targets === 'labels') return tf.tidy(() => tf.oneHot(tf.tensor1d(labels, 'int32'), this.outputWidth()).toFloat());
    if (this.loss.targets === 'inputs') return tf.clone(x);
    if (!given) throw new WorkerError("the loss's targets are 'data' but the request carries no targets");
    return given;
  }

  // The spec's loss of outputs h (see the header): softmax cross-entropy by log-softmax without smoothing, else tf.losses.
  lossOf(h, yOneHot, t) {
    switch (this.loss.type) {
      case 'mse': return tf.losses.meanSquaredError(t, h);
      case 'bce_with_logits': return tf.losses.sigmoidCrossEntropy(t, h);
      default:
        if (this.loss.labelSmoothing > 0) return tf.losses.softmaxCrossEntropy(yOneHot, h, undefined, this.loss.labelSmoothing);
        // Mean softmax cross-entropy from logits through log-softmax (log-sum-exp), docs/conventions.md section 4.
        return tf.neg(tf.mean(tf.sum(tf.mul(yOneHot, tf.logSoftmax(h)), 1)));
    }
  }

  step(x, labels, capture, step = 0, masks = new Map(), given = null) {
    const want = new Set(capture);
    const t = this.targets(x, labels, given);
    const entries = [];
    const forward = [];
    const stats = [];
    const dropped = [];
    const owned = [];
    const stepMasks = this.dropoutMasks(x.shape[0], step, masks, owned);
    const wantProbes = want.has('outputGradient');
    const probes = wantProbes ? this.probesFor(x.shape[0]) : null;
    const trainable = this.params.filter(p => p.trainable).map(p => p.variable.read());
    const yOneHot = tf.tidy(() => tf.oneHot(tf.tensor1d(labels, 'int32'), this.outputWidth()));
    let logitsValues = null;
    const { value, grads } = tf.variableGrads(() => {
      let h = x;
      this.calls.forEach((c, i) => {
        if (c.isBn && (want.has('batchMean') || want.has('batchVariance'))) {
          // The statistics BatchNormalization normalizes with: tf.moments over the batch axis of the call
          // input, the same op normalizeBatchInTraining uses (normalization.js), so identical values.
          const m = tf.moments(h, [0]);
          stats.push({ id: c.id, mean: m.mean.dataSync().slice(), variance: m.variance.dataSync().slice(), shape: m.mean.shape });
        }
        const ls = this.layers.get(c.layer).spec;
        if (ls.type === 'dropout') {
          const mask = stepMasks.get(c.id);
          if (want.has('dropoutMask')) dropped.push({ id: c.id, values: mask.dataSync().slice(), shape: mask.shape });
          h = tf.mul(h, tf.mul(mask, 1 / (1 - ls.p)));
        } else {
          h = this.layers.get(c.layer).layer.apply(h, { training: true });
        }
        if (wantProbes) h = tf.add(h, probes[i]);
        if (want.has('forward')) forward.push({ id: c.id, values: h.dataSync().slice(), shape: h.shape });
      });
      logitsValues = { values: h.dataSync().slice(), shape: h.shape };
      const loss = this.lossOf(h, yOneHot, t);
      const term = this.lossTerm();
      return term === null ? loss : tf.add(loss, term);
    }, wantProbes ? trainable.concat(probes) : trainable);

    for (const d of dropped) entries.push({ kind: 'dropoutMask', site: d.id, tensor: encodeArray(d.values, d.shape) });
    const statsById = new Map(stats.map(s => [s.id, s]));
    for (const f of forward) {
      entries.push({ kind: 'forward', site: f.id, tensor: encodeArray(f.values, f.shape) });
      const s = statsById.get(f.id);
      if (s && want.has('batchMean')) entries.push({ kind: 'batchMean', site: f.id, tensor: encodeArray(s.mean, s.shape) });
      if (s && want.has('batchVariance')) entries.push({ kind: 'batchVariance', site: f.id, tensor: encodeArray(s.variance, s.shape) });
    }
    if (!want.has('forward')) {
      for (const s of stats) {
        if (want.has('batchMean')) entries.push({ kind: 'batchMean', site: s.id, tensor: encodeArray(s.mean, s.shape) });
        if (want.has('batchVariance')) entries.push({ kind: 'batchVariance', site: s.id, tensor: encodeArray(s.variance, s.shape) });
      }
    }
    entries.push({ kind: 'loss', site: '', tensor: encodeArray(Float32Array.of(value.dataSync()[0]), []) });
    if (this.hasAccuracy) entries.push({ kind: 'trainAccuracy', site: '', tensor: encodeArray(Float32Array.of(accuracy(logitsValues, labels)), []) });
    if (wantProbes) {
      this.calls.forEach((c, i) => entries.push({ kind: 'outputGradient', site: c.id, tensor: encode(grads[probes[i].name]) }));
    }
    const trainableGrads = {};
    for (const p of this.params) {
      if (!p.trainable) continue;
      const g = grads[p.variable.read().name];
      trainableGrads[p.variable.read().name] = g;
      if (want.has('parameterGradient')) {
        entries.push({ kind: 'parameterGradient', site: p.name, tensor: tf.tidy(() => encode(p.transpose ? g.transpose() : g)) });
      }
    }
    // Clipping first, then the coupled decay term, then the decoupled shrink and the update (docs/spec.md); the traced
    // gradients above are the raw ones.
    const clipped = this.spec.optimizer.clip ? clipGradients(trainableGrads, this.spec.optimizer.clip) : trainableGrads;
    const updates = {};
    for (const p of this.params) {
      if (!p.trainable) continue;
      const name = p.variable.read().name;
      updates[name] = this.decayedGradient(p, clipped[name]);
    }
    this.prepareUpdate();
    this.applyDecoupledDecay();
    this.optimizer.applyGradients(updates);
    this.updates += 1;
    const raw = new Set(Object.values(grads));
    tf.dispose([...new Set([...Object.values(clipped), ...Object.values(updates)])].filter(t => !raw.has(t)));
    for (const e of this.stateEntriesWanted(want)) entries.push(e);
    tf.dispose([value, yOneHot, ...Object.values(grads), ...owned]);
    if (t && t !== given) t.dispose();
    return entries;
  }

  stateEntriesWanted(want) {
    const out = [];
    if (want.has('runningMean') || want.has('runningVariance')) {
      for (const { name, layer } of this.batchnorms) {
        if (want.has('runningMean')) out.push({ kind: 'runningMean', site: name, tensor: encode(layer.movingMean.read()) });
        if (want.has('runningVariance')) out.push({ kind: 'runningVariance', site: name, tensor: encode(layer.movingVariance.read()) });
      }
    }
    if (want.has('parameter')) {
      for (const p of this.params) out.push({ kind: 'parameter', site: p.name, tensor: tf.tidy(() => encode(p.transpose ? p.variable.read().transpose() : p.variable.read())) });
    }
    return out;
  }

  outputWidth() {
    let width = this.spec.model.inputs;
    for (const c of this.calls) {
      const ls = this.layers.get(c.layer).spec;
      if (ls.type === 'linear') width = ls.out;
    }
    return width;
  }

  evaluate(x, labels, capture, given) {
    const want = new Set(capture);
    return tf.tidy(() => {
      const t = this.targets(x, labels, given);
      const entries = [];
      let h = x;
      for (const c of this.calls) {
        h = this.layers.get(c.layer).layer.apply(h, { training: false });
        if (want.has('evalOutput')) entries.push({ kind: 'evalOutput', site: c.id, tensor: encode(h) });
      }
      const yOneHot = tf.oneHot(tf.tensor1d(labels, 'int32'), this.outputWidth());
      const loss = this.lossOf(h, yOneHot, t);
      entries.push({ kind: 'evalLoss', site: '', tensor: encode(loss) });
      if (this.hasAccuracy) entries.push({ kind: 'evalAccuracy', site: '', tensor: encodeArray(Float32Array.of(accuracy({ values: h.dataSync(), shape: h.shape }, labels)), []) });
      return entries;
    });
  }
}

// Fraction of rows whose first maximal logit is the label (the same tie rule as argmax everywhere).
function accuracy(logits, labels) {
  const [rows, cols] = logits.shape;
  let correct = 0;
  for (let r = 0; r < rows; r++) {
    let best = 0;
    for (let c = 1; c < cols; c++) if (logits.values[r * cols + c] > logits.values[r * cols + best]) best = c;
    if (best === labels[r]) correct++;
  }
  return correct / rows;
}

let model = null;

function batch(req) {
  const x = decode(req.inputs, 'inputs');
  if (!Array.isArray(req.labels) || req.labels.length !== x.shape[0]) {
    x.dispose();
    throw new WorkerError(`inputs have ${x.shape[0]} rows but ${Array.isArray(req.labels) ? req.labels.length : 'no'} labels were sent`);
  }
  return x;
}

async function handle(req) {
  switch (req.op) {
    case 'build': {
      const dtype = req.dtype || req.spec.dtype;
      if (dtype !== 'float32') throw new WorkerError(`TF.js (wasm backend) computes in float32 only; ${dtype} was requested`);
      if (req.device && req.device !== 'cpu') throw new WorkerError(`device '${req.device}' is not available: this worker runs TF.js on the wasm (CPU) backend`);
      if (model) model.layers.forEach(({ layer }) => layer.dispose());
      exchange.directory = req.exchangeDirectory || null;
      exchange.threshold = req.fileThreshold == null ? null : req.fileThreshold;
      model = new Model(req.spec);
      return { mismatches: model.mismatches, runtime: { device: 'cpu', tfjsBackend: tf.getBackend() } };
    }
    case 'shutdown':
      return {};
    default:
      break;
  }
  if (!model) throw new WorkerError(`'${req.op}' before 'build'`);
  switch (req.op) {
    case 'load_state':
      model.loadState(req.entries || []);
      return {};
    case 'read_state':
      return { entries: model.stateEntries().concat(await model.optimizerEntries(new Set(['optimizerStep', 'optimizerSlot']))) };
    case 'step': {
      const x = batch(req);
      const masks = new Map(Object.entries(req.dropoutMasks || {}).map(([id, t]) => [id, decode(t, `dropoutMasks.${id}`)]));
      const given = req.targets ? decode(req.targets, 'targets') : null;
      const start = process.hrtime.bigint();
      try {
        const entries = model.step(x, req.labels, req.capture || [], req.step, masks, given);
        entries.push(...await model.optimizerEntries(new Set(req.capture || [])));
        const computeMs = Number(process.hrtime.bigint() - start) / 1e6;
        // PARITY_WORKER_DEBUG=1 logs the live tensor count: it must stay flat over steps (no leak).
        if (process.env.PARITY_WORKER_DEBUG === '1') log(`step ${req.step}: ${tf.memory().numTensors} live tensors`);
        return { entries, computeMs };
      } finally {
        x.dispose();
        masks.forEach(m => m.dispose());
        if (given) given.dispose();
      }
    }
    case 'evaluate': {
      const x = batch(req);
      const given = req.targets ? decode(req.targets, 'targets') : null;
      try {
        return { entries: model.evaluate(x, req.labels, req.capture || [], given) };
      } finally {
        x.dispose();
        if (given) given.dispose();
      }
    }
    default:
      throw new WorkerError(`unknown op '${req.op}'`);
  }
}

function send(obj) {
  // Synchronous write: stdout to a pipe is synchronous on Linux in Node, and fs.writeSync makes it so everywhere.
  const line = JSON.stringify(obj) + '\n';
  let buf = Buffer.from(line, 'utf8');
  while (buf.length > 0) {
    try {
      const n = fs.writeSync(1, buf);
      buf = buf.subarray(n);
    } catch (e) {
      if (e.code !== 'EAGAIN') throw e;
    }
  }
}

async function main() {
  tf.enableProdMode();
  await tf.setBackend('wasm');
  await tf.ready();
  send({
    type: 'ready', protocol: PROTOCOL, framework: 'tfjs', version: tf.version.tfjs,
    versions: { 'tfjs': tf.version.tfjs, 'tfjs-layers': tf.version['tfjs-layers'], 'tfjs-backend-wasm': require('@tensorflow/tfjs-backend-wasm').version_wasm, node: process.versions.node },
    capabilities: { dtypes: ['float32'], devices: ['cpu'], training: true, sharedInstances: true, frameworkInit: true },
  });
  const rl = readline.createInterface({ input: process.stdin, crlfDelay: Infinity });
  for await (const line of rl) {
    if (!line.trim()) continue;
    let id = null, op = null;
    try {
      const req = JSON.parse(line);
      id = req.id; op = req.op;
      const result = await handle(req);
      result.id = id;
      send(result);
    } catch (e) {
      if (!(e instanceof WorkerError)) log(e && e.stack ? e.stack : String(e));
      send({ id, error: { message: e instanceof WorkerError ? e.message : `${e && e.name ? e.name : 'Error'}: ${e && e.message ? e.message : e}` } });
    }
    if (op === 'shutdown') break;
  }
  process.exit(0);
}

main().catch(e => { log(e && e.stack ? e.stack : String(e)); process.exit(1); });
