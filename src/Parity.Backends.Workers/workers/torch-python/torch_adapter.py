"""The PyTorch adapter: the spec's MLP, optimizer and state in PyTorch (docs/python-adapters.md).

One module, two hosts: the torch-python worker (worker.py, a stdio shell of the worker protocol) and the torch-pythonnet
backend (the harness's own process through pythonnet) both run this mapping, so both train bit-identically.

The canonical spec is already in PyTorch's conventions (docs/conventions.md: linear weight [out, in], BatchNorm
momentum = weight of the new statistic, eps inside the sqrt, unbiased running variance, Adam with eps added to
sqrt(v_hat)), so the mapping below is the identity except where PyTorch cannot express the spec, which is declared in
the mismatches of build.
"""
import math
import re
import sys

from parity_adapter import AdapterError

try:
    import numpy as np
    import torch
    import torch.nn as nn
    import torch.nn.functional as F
except ImportError as e:  # the hosts report this message (worker: its stderr; in process: the traceback's last lines)
    raise ImportError(f"cannot import PyTorch ({e}); on Debian install python3-torch (scripts/setup)") from e

FRAMEWORK = "pytorch"
DTYPES = {"float32": (torch.float32, "<f4"), "float64": (torch.float64, "<f8")}
# Canonical optimizer slot -> its key in torch.optim's per-parameter state (docs/worker-protocol.md section 5).
SLOT_STATE = {"m": "exp_avg", "v": "exp_avg_sq", "momentum": "momentum_buffer",
              "meanSquare": "square_avg", "meanGradient": "grad_avg", "accumulator": "sum"}

# Every kind that depends on the parameter trajectory: what an optimizer mismatch changes.
PARAMETER_AND_DOWNSTREAM = ["parameter", "runningMean", "runningVariance", "forward", "loss", "outputGradient",
                            "parameterGradient", "optimizerSlot", "evalOutput", "evalLoss", "evalAccuracy"]


def describe():
    """Framework, versions and capabilities: the worker's ready line and what `parity backends` shows."""
    return {"framework": FRAMEWORK, "version": torch.__version__, "versions": versions(),
            "capabilities": {"dtypes": list(DTYPES), "devices": ["cpu"] + (["cuda"] if torch.cuda.is_available() else []),
                             "training": True, "sharedInstances": True, "frameworkInit": True}}


def versions():
    v = {"torch": torch.__version__, "numpy": np.__version__, "python": sys.version.split()[0]}
    if torch.cuda.is_available():
        v["cuda"] = torch.version.cuda or "unknown"
        v["gpu"] = torch.cuda.get_device_name(0)
    try:
        m = re.search(r"BLAS_INFO=([^,\s]+)", torch.__config__.show())
        v["blas"] = m.group(1) if m else "unknown"
    except Exception:  # only informational
        pass
    return v


def build(spec, dtype, device, threads):
    """The session of one plan: `spec` the canonical spec (a dict), `dtype` "float32" or "float64", `device` None or a
    torch device name, `threads` None or the intra-op thread count."""
    if dtype not in DTYPES:
        raise AdapterError(f"unsupported dtype '{dtype}'")
    device = device or "cpu"
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise AdapterError(f"device '{device}' requested but torch {torch.__version__} sees no CUDA device")
    if threads:
        torch.set_num_threads(int(threads))
    model = Model(spec, dtype, torch.device(device))
    model.runtime = {"device": device, "threads": str(torch.get_num_threads())}
    if device.startswith("cuda"):
        model.runtime["gpu"] = torch.cuda.get_device_name(torch.device(device))
    return model


def learning_rate(schedule, lr, k):
    """The spec's learning rate of update k (0-based; docs/spec.md "Learning-rate schedules")."""
    kind = schedule["type"]
    if kind == "step":
        return lr * schedule["gamma"] ** (k // schedule["stepSize"])
    if kind == "exponential":
        exponent = k // schedule["decaySteps"] if schedule["staircase"] else k / schedule["decaySteps"]
        return lr * schedule["rate"] ** exponent
    if kind == "cosine":
        t = min(k, schedule["decaySteps"]) / schedule["decaySteps"]
        return schedule["minLr"] + (lr - schedule["minLr"]) * (1 + math.cos(math.pi * t)) / 2
    if kind == "constant":
        return lr
    raise AdapterError(f"optimizer.schedule: unsupported type '{kind}'")


def make_scheduler(optimizer, schedule, lr):
    """A torch.optim.lr_scheduler stepped after every update: StepLR where the schedule is a step or staircase
    exponential one (its last_epoch then counts updates), LambdaLR with the closed form otherwise (CosineAnnealingLR
    computes its rate recursively and rises again after T_max); None for a constant rate."""
    kind = schedule["type"]
    if kind == "constant":
        return None
    if kind == "step":
        return torch.optim.lr_scheduler.StepLR(optimizer, step_size=schedule["stepSize"], gamma=schedule["gamma"])
    if kind == "exponential" and schedule["staircase"]:
        return torch.optim.lr_scheduler.StepLR(optimizer, step_size=schedule["decaySteps"], gamma=schedule["rate"])
    learning_rate(schedule, lr, 0)  # refuses an unknown type before training
    return torch.optim.lr_scheduler.LambdaLR(optimizer, lambda k: learning_rate(schedule, lr, k) / lr)


# The eps torch.nn.utils.clip_grad_norm_ adds to the norm (torch/nn/utils/clip_grad.py) [P12].
TORCH_CLIP_EPS = 1e-6


def clip_gradients(params, clip):
    """Clips the .grad of params in place as the spec says: torch's own clip_grad_norm_ (globally, or once per tensor)
    where the spec's eps is torch's 1e-6, the same formula min(1, maxNorm / (norm + eps)) in torch ops otherwise;
    clip_grad_value_ by value."""
    kind = clip["type"]
    if kind == "value":
        torch.nn.utils.clip_grad_value_(params, clip["value"])
        return
    groups = [params] if kind == "globalNorm" else [[p] for p in params]
    for group in groups:
        if clip["eps"] == TORCH_CLIP_EPS:
            torch.nn.utils.clip_grad_norm_(group, clip["maxNorm"])
            continue
        with torch.no_grad():
            norm = torch.linalg.vector_norm(torch.stack([torch.linalg.vector_norm(p.grad) for p in group]))
            scale = torch.clamp(clip["maxNorm"] / (norm + clip["eps"]), max=1.0)
            for p in group:
                p.grad.mul_(scale)


def as_arrays(entries):
    """(kind, site, tensor) -> (kind, site, numpy array): views of CPU tensors, copied by the host before the next call
    (in process, a step's non-state arrays during it: Model.fresh_step_arrays)."""
    return [(kind, site, t.detach().to("cpu").numpy()) for kind, site, t in entries]


def canonical_loss(loss):
    """The spec's loss as an object: the canonical JSON writes the default as its bare name."""
    if isinstance(loss, str):
        return {"type": loss, "labelSmoothing": 0.0, "targets": "labels"}
    return loss


def init_tensor(w, init, fan_in, fan_out, is_bias):
    """Framework init: PyTorch's own seeded initializers for the spec's initializer names."""
    kind = init["type"]
    with torch.no_grad():
        if kind == "zeros":
            nn.init.zeros_(w)
        elif kind == "ones":
            nn.init.ones_(w)
        elif kind == "he_normal":
            nn.init.normal_(w, 0.0, math.sqrt(2.0 / fan_in))  # = kaiming_normal_ (fan_in, relu) [P4]
        elif kind == "he_normal_truncated":
            # Keras he_normal: truncated at 2 sigma, sigma = sqrt(2/fan_in)/0.87962566 [K2]
            s = math.sqrt(2.0 / fan_in) / 0.87962566103423978
            nn.init.trunc_normal_(w, 0.0, s, -2 * s, 2 * s)
        elif kind == "lecun_normal":
            nn.init.normal_(w, 0.0, math.sqrt(1.0 / fan_in))
        elif kind == "glorot_uniform":
            b = math.sqrt(6.0 / (fan_in + fan_out))
            nn.init.uniform_(w, -b, b)
        elif kind == "pytorch_default":
            b = 1.0 / math.sqrt(fan_in)  # nn.Linear.reset_parameters bound for weight and bias [P3]
            nn.init.uniform_(w, -b, b)
        elif kind == "normal":
            nn.init.normal_(w, 0.0, float(init["std"]))
        else:
            raise AdapterError(f"unknown initializer '{kind}'")


# Everything another mask reaches: the mask, then (from the next step on) every tensor of the trajectory.
AFTER_DROPOUT = ["dropoutMask", "forward", "batchMean", "batchVariance", "loss", "trainAccuracy", "outputGradient",
                 "parameterGradient", "runningMean", "runningVariance", "optimizerSlot", "parameter", "evalOutput", "evalLoss",
                 "evalAccuracy"]


def framework_masks(name, layer):
    """The declared mismatch of a dropout layer with masks: framework: torch's own draw, not the harness's; the step checks
    still replay each step with the recorded mask, so the value is the spec's own."""
    return {"setting": f"model.layers[{name}].masks",
            "spec": f"framework: '{name}' drops with probability {layer['p']} using each framework's own RNG (the reference applies the harness's masks)",
            "backend": "torch's Bernoulli draw (F.dropout on ones): another mask than the harness's and any other framework's; the trajectory differs from the dropout on by design",
            "value": "framework", "affects": AFTER_DROPOUT}


class Model:
    """The spec's model and optimizer in PyTorch; the adapter interface's session (docs/python-adapters.md)."""

    # Every array a step answers besides the state is a tensor made in that step (gradients are cloned before clipping)
    # and never written again, so the in-process host may copy them while the next step runs.
    fresh_step_arrays = True

    def __init__(self, spec, dtype_name, device):
        self.spec = spec
        self.dtype_name = dtype_name
        self.dtype, self.np_dtype = DTYPES[dtype_name]
        self.device = device
        self.mismatches = []
        model = spec["model"]
        framework_init = spec["init"]["mode"] == "framework"
        if framework_init:
            torch.manual_seed(int(spec["init"]["seed"]) & 0xFFFFFFFFFFFFFFFF)
        self.modules = {}
        self.params = []  # (canonical name, parameter)
        self.batchnorms = []  # (instance name, module)
        self.dropouts = {}  # instance name -> spec layer
        for layer in model["layers"]:
            name, kind = layer["name"], layer["type"]
            if kind == "linear":
                m = nn.Linear(layer["in"], layer["out"], bias=layer["bias"])
                if framework_init:
                    init_tensor(m.weight, layer["init"]["weight"], layer["in"], layer["out"], False)
                    if layer["bias"]:
                        init_tensor(m.bias, layer["init"]["bias"], layer["in"], layer["out"], True)
                self.params.append((f"{name}.weight", m.weight))
                if layer["bias"]:
                    self.params.append((f"{name}.bias", m.bias))
            elif kind == "batchnorm":
                # PyTorch momentum is the canonical momentum; eps inside the sqrt [P1].
                m = nn.BatchNorm1d(layer["features"], eps=layer["eps"], momentum=layer["momentum"], affine=layer["affine"])
                if layer["affine"]:
                    self.params += [(f"{name}.gamma", m.weight), (f"{name}.beta", m.bias)]
                self.batchnorms.append((name, m))
                if layer["runningVariance"] == "biased":
                    self.mismatches.append({
                        "setting": f"model.layers[{name}].runningVariance", "spec": "biased (1/N) batch variance into the running variance",
                        "backend": "torch.nn.BatchNorm1d always stores the unbiased (1/(N-1)) batch variance",
                        "value": "unbiased", "affects": ["runningVariance", "evalOutput", "evalLoss", "evalAccuracy"]})
            elif kind == "layernorm":
                m = nn.LayerNorm(layer["features"], eps=layer["eps"], elementwise_affine=layer["affine"])
                if layer["affine"]:
                    self.params += [(f"{name}.gamma", m.weight), (f"{name}.beta", m.bias)]
            elif kind == "relu":
                m = nn.ReLU()
            elif kind == "identity":
                m = nn.Identity()
            elif kind == "tanh":
                m = nn.Tanh()
            elif kind == "sigmoid":
                m = nn.Sigmoid()
            elif kind == "leaky_relu":
                # The slope and alpha are passed as written, so PyTorch's defaults (0.01, 1.0) never apply [P7].
                m = nn.LeakyReLU(negative_slope=layer["slope"])
            elif kind == "gelu":
                m = nn.GELU(approximate="none" if layer["approximation"] == "exact" else "tanh")
            elif kind == "silu":
                m = nn.SiLU()
            elif kind == "elu":
                m = nn.ELU(alpha=layer["alpha"])
            elif kind == "dropout":
                # Called in eval only (the identity there); in training train_step applies the mask it traces.
                m = nn.Dropout(p=layer["p"])
                self.dropouts[name] = layer
                if layer["masks"] == "framework":
                    self.mismatches.append(framework_masks(name, layer))
            else:
                raise AdapterError(f"model.layers[{name}]: unsupported layer type '{kind}'")
            self.modules[name] = m.to(device=device, dtype=self.dtype)
        if not framework_init and any(d["masks"] == "framework" for d in self.dropouts.values()):
            # masks: framework draws from torch's global generator: seeded by the scenario's seed.
            torch.manual_seed(int(spec["seed"]) & 0xFFFFFFFFFFFFFFFF)
        self.loss = canonical_loss(spec.get("loss", "softmax_cross_entropy"))
        self.accuracy = self.loss["targets"] == "labels"
        self.outputs = self.output_width(model)
        self.calls = [(c["id"], c["layer"]) for c in model["calls"]]
        self.bn_instances = {n for n, _ in self.batchnorms}
        opt = spec["optimizer"]
        self.decay = opt.get("weightDecay")
        params = self.decay_groups(opt, [p for _, p in self.params])
        self.updates = 0  # optimizer steps taken: torch.optim.SGD keeps no count of its own
        if opt["type"] == "sgd":
            # PyTorch SGD: v = mu v + g; p -= lr v, with Nesterov p -= lr (g + mu v) (dampening 0): the canonical form.
            self.optimizer = torch.optim.SGD(params, lr=opt["lr"], momentum=opt["momentum"], nesterov=opt.get("nesterov", False))
            self.slots = ["momentum"] if opt["momentum"] > 0 else []
        elif opt["type"] == "adam":
            adam = torch.optim.AdamW if self.torch_adamw(opt) else torch.optim.Adam
            self.optimizer = adam(params, lr=opt["lr"], betas=(opt["beta1"], opt["beta2"]), eps=opt["eps"])
            self.slots = ["m", "v"]
            if opt.get("betaPrecision", "float64") == "float32":
                self.mismatches.append({
                    "setting": "optimizer.betaPrecision", "spec": "float32: bias correction from float32 powers of beta",
                    "backend": "torch.optim.Adam forms 1 - beta and 1 - beta^t from Python floats (float64) [P5]", "value": "float64",
                    "affects": ["optimizerSlot", "parameter"]})
            if opt["epsilonForm"] == "epsilonHat":
                self.mismatches.append({
                    "setting": "optimizer.epsilonForm", "spec": "epsilonHat: lr*sqrt(1-b2^t)/(1-b1^t) * m/(sqrt(v)+eps)",
                    "backend": "torch.optim.Adam adds eps to sqrt(v_hat) [P5]", "value": "sqrtVHat",
                    "affects": ["parameter", "runningMean", "runningVariance", "forward", "loss", "outputGradient",
                                "parameterGradient", "optimizerSlot", "evalOutput", "evalLoss", "evalAccuracy"]})
        elif opt["type"] in ("rmsprop", "adagrad"):
            self.build_rmsprop_or_adagrad(opt, params)
        else:
            raise AdapterError(f"optimizer: unsupported type '{opt['type']}'")
        self.schedule = opt.get("schedule", {"type": "constant"})
        self.scheduler = make_scheduler(self.optimizer, self.schedule, opt["lr"])
        self.clip = opt.get("clip")
        self.keras_momentum = opt["type"] == "sgd" and opt.get("momentumForm", "pytorch") == "keras"

    def build_rmsprop_or_adagrad(self, opt, params):
        """torch.optim.RMSprop (momentum and centered in the canonical PyTorch form) or Adagrad (lr_decay 0) [P10].

        Both divide by sqrt(s) + eps only, and RMSprop's square_avg starts at zeros: an eps inside the square root (eps 0
        has no placement) and a nonzero mean-square start are declared as mismatches.
        """
        if opt["type"] == "rmsprop":
            self.optimizer = torch.optim.RMSprop(params, lr=opt["lr"], alpha=opt["rho"], eps=opt["eps"], weight_decay=0,
                                                 momentum=opt["momentum"], centered=opt["centered"])
            self.slots = ["meanSquare"] + (["momentum"] if opt["momentum"] > 0 else []) + (["meanGradient"] if opt["centered"] else [])
            if opt["meanSquareInit"] > 0:
                self.mismatches.append({
                    "setting": "optimizer.meanSquareInit", "spec": f"the mean square starts at {opt['meanSquareInit']}",
                    "backend": "torch.optim.RMSprop creates square_avg as zeros [P10]", "value": 0,
                    "affects": PARAMETER_AND_DOWNSTREAM})
        else:
            self.optimizer = torch.optim.Adagrad(params, lr=opt["lr"], lr_decay=0, weight_decay=0,
                                                 initial_accumulator_value=opt["initialAccumulator"], eps=opt["eps"])
            self.slots = ["accumulator"]
        if opt["epsilonPlacement"] == "inside" and opt["eps"] > 0:
            self.mismatches.append({
                "setting": "optimizer.epsilonPlacement", "spec": f"inside: denominator sqrt(s + eps), eps {opt['eps']}",
                "backend": f"outside: torch.optim.{'RMSprop' if opt['type'] == 'rmsprop' else 'Adagrad'} divides by sqrt(s) + eps [P10]",
                "value": "outside", "affects": PARAMETER_AND_DOWNSTREAM})

    def decayed(self, name):
        """Whether weight decay applies to the parameter `name`: every one, or the linear weights alone."""
        return self.decay is not None and (self.decay["parameters"] == "all" or name.rsplit(".", 1)[-1] == "weight")

    def torch_adamw(self, opt):
        """torch.optim.AdamW is exactly Adam with decoupled decay p.mul_(1 - lr*wd) before the update [P10]."""
        return (opt["type"] == "adam" and self.decay is not None and self.decay["form"] == "decoupled"
                and self.decay["multiplyByLearningRate"])

    def decay_groups(self, opt, params):
        """The parameters, as torch.optim param groups when torch.optim applies the decay itself.

        Coupled decay is every torch.optim optimizer's weight_decay= (grad.add(param, alpha=wd) inside step()), and
        decoupled decay multiplied by lr with Adam is AdamW's: a group with the rate for the decayed parameters, one
        with 0 for the rest (PyTorch's way of sparing biases and normalization parameters). Other forms are applied
        around the step (manual_decay, loss_term).
        """
        if self.decay is None or not (self.decay["form"] == "coupled" or self.torch_adamw(opt)):
            return params
        decayed = [p for n, p in self.params if self.decayed(n)]
        spared = [p for n, p in self.params if not self.decayed(n)]
        groups = [{"params": decayed, "weight_decay": self.decay["rate"]}, {"params": spared, "weight_decay": 0.0}]
        return [g for g in groups if g["params"]]

    def loss_term(self):
        """The L2 loss term coefficient * sum(w^2) per decayed parameter (Keras regularizers.l2), or None."""
        if self.decay is None or self.decay["form"] != "l2Loss":
            return None
        terms = [p.pow(2).sum() * self.decay["coefficient"] for n, p in self.params if self.decayed(n)]
        return terms or None

    @torch.no_grad()
    def manual_decay(self):
        """Decoupled decay that torch.optim has no option for (SGD's, or not multiplied by lr): AdamW's own op before step()."""
        if self.decay is None or self.decay["form"] != "decoupled" or self.torch_adamw(self.spec["optimizer"]):
            return
        # This update's rate: the schedule's, as torch.optim's param group holds it before the scheduler moves on.
        rate = self.decay["rate"] * (self.optimizer.param_groups[0]["lr"] if self.decay["multiplyByLearningRate"] else 1.0)
        for n, p in self.params:
            if self.decayed(n):
                p.mul_(1 - rate)

    def set_mode(self, training):
        for m in self.modules.values():
            m.train(training)

    def load_state(self, entries):
        """Sets parameters and running statistics from (kind, site, array) entries, each copied into the model."""
        params = dict(self.params)
        bns = dict(self.batchnorms)
        with torch.no_grad():
            for kind, site, array in entries:
                if kind == "parameter" and site in params:
                    target = params[site]
                elif kind == "runningMean" and site in bns:
                    target = bns[site].running_mean
                elif kind == "runningVariance" and site in bns:
                    target = bns[site].running_var
                else:
                    raise AdapterError(f"load_state: unknown entry {kind}:{site}")
                if tuple(target.shape) != tuple(np.shape(array)):
                    raise AdapterError(f"load_state: {kind}:{site} has shape {list(np.shape(array))}; the model has {list(target.shape)}")
                target.copy_(self.tensor(array))

    def read_state(self):
        """The state entries: parameters, running statistics, the update count and every optimizer slot."""
        return as_arrays(self.state_entries())

    def tensor(self, array):
        """A model-dtype tensor holding a copy of `array` (the host's buffer is only lent for the call)."""
        return torch.from_numpy(np.array(array, dtype=self.np_dtype)).to(self.device)

    def output_width(self, model):
        """Width of the last call's output: the last linear layer's out (every other layer keeps its width)."""
        width = model["inputs"]
        layers = {l["name"]: l for l in model["layers"]}
        for c in model["calls"]:
            layer = layers[c["layer"]]
            if layer["type"] == "linear":
                width = layer["out"]
        return width

    def batch(self, inputs, labels, targets=None):
        x = self.tensor(inputs)
        y = torch.from_numpy(np.array(labels, dtype=np.int64)).to(self.device)
        if x.shape[0] != y.shape[0]:
            raise AdapterError(f"inputs have {x.shape[0]} rows but there are {y.shape[0]} labels")
        return x, y, self.targets(x, y, targets)

    def targets(self, x, y, given):
        """The float targets of an element-wise loss: one-hot labels, the inputs themselves, or the batch's own."""
        if self.loss["type"] == "softmax_cross_entropy":
            return None
        source = self.loss["targets"]
        if source == "labels":
            return F.one_hot(y, self.outputs).to(self.dtype)
        if source == "inputs":
            return x.clone()
        if given is None:
            raise AdapterError("the loss's targets are 'data' but the batch carries no targets")
        t = self.tensor(given)
        if tuple(t.shape) != (x.shape[0], self.outputs):
            raise AdapterError(f"targets have shape {list(t.shape)}; the loss needs [{x.shape[0]}, {self.outputs}]")
        return t

    def loss_of(self, h, y, t):
        """PyTorch's own losses with their 'mean' reduction, which is the spec's: cross_entropy over samples (label_smoothing
        mixes (1-e) onehot + e/C), mse_loss and binary_cross_entropy_with_logits (fused) over ALL elements [P11]."""
        kind = self.loss["type"]
        if kind == "mse":
            return F.mse_loss(h, t)
        if kind == "bce_with_logits":
            return F.binary_cross_entropy_with_logits(h, t)
        smoothing = float(self.loss["labelSmoothing"])
        return F.cross_entropy(h, y, label_smoothing=smoothing) if smoothing else F.cross_entropy(h, y)  # log_softmax + NLL [P6]

    def state_entries(self):
        out = [("parameter", n, p) for n, p in self.params]
        for n, m in self.batchnorms:
            out += [("runningMean", n, m.running_mean), ("runningVariance", n, m.running_var)]
        return out + self.optimizer_entries()

    def optimizer_entries(self):
        """The update count and every slot, read from optimizer.state[p].

        torch.optim creates a parameter's state at its first step (Adam's exp_avg and exp_avg_sq as zeros, then updated;
        SGD's momentum_buffer as a clone of the first gradient), so before it the slots are the canonical zeros. exp_avg
        and exp_avg_sq are the biased moments (bias correction is applied only in the update), momentum_buffer is
        v = mu v + g (RMSprop: b = mu b + g / denominator). RMSprop creates square_avg, grad_avg and momentum_buffer as
        zeros at its first step; Adagrad creates sum (at initial_accumulator_value) and its step count at construction. Adam counts its steps per parameter in 'step' (a tensor since torch 1.12); SGD counts none.
        """
        first = self.optimizer.state.get(self.params[0][1], {}) if self.params else {}
        count = float(first["step"]) if "step" in first else float(self.updates)
        out = [("optimizerStep", "", torch.tensor(count, dtype=self.dtype))]
        for name, p in self.params:
            state = self.optimizer.state.get(p, {})
            for slot in self.slots:
                value = state.get(SLOT_STATE[slot])
                out.append(("optimizerSlot", f"{name}/{slot}", torch.zeros_like(p) if value is None else value))
        return out

    def rescale_momentum(self):
        """The Keras momentum form in torch.optim.SGD: m = mu m - lr g; p += m is b = mu (lr_prev / lr) b + g; p -= lr b
        with b = -m / lr, so each buffer is scaled by lr_prev / lr before the step when the rate changed."""
        lr = self.optimizer.param_groups[0]["lr"]
        previous = getattr(self, "last_lr", lr)
        if previous == lr:
            return
        with torch.no_grad():
            for _, p in self.params:
                buffer = self.optimizer.state.get(p, {}).get("momentum_buffer")
                if buffer is not None:
                    buffer.mul_(previous / lr)

    def step(self, inputs, labels, capture, dropout_masks=None, targets=None):
        """One training step on a batch; returns the captured (kind, site, array) entries. `dropout_masks`: the harness's
        0/1 mask of each dropout call, by call id; `targets`: the batch's float targets when the loss's targets are 'data'."""
        return as_arrays(self.train_step(*self.batch(inputs, labels, targets), capture, dropout_masks or {}))

    def evaluate(self, inputs, labels, capture, targets=None):
        """Eval-mode forward over a batch; returns the eval (kind, site, array) entries."""
        return as_arrays(self.eval_forward(*self.batch(inputs, labels, targets), capture))

    def dropout(self, h, call_id, layer, masks):
        """Inverted dropout as h * (m * 1/(1-p)), the product torch's own dropout forms (Bernoulli noise divided by 1 - p,
        then multiplied in), so the backward is dy times the same scaled mask. m is the harness's mask, or under
        masks: framework torch's own draw: F.dropout of ones, nonzero where it kept."""
        with torch.no_grad():
            if layer["masks"] == "framework":
                m = (F.dropout(torch.ones_like(h), p=layer["p"], training=True) != 0).to(self.dtype)
            elif call_id in masks:
                m = self.tensor(masks[call_id])
            else:
                raise AdapterError(f"dropout call '{call_id}': the step carries no mask for it")
        return h * (m * (1.0 / (1.0 - layer["p"]))), m

    def train_step(self, x, y, t, capture, masks=None):
        want = set(capture)
        entries = []
        self.set_mode(True)
        self.optimizer.zero_grad(set_to_none=True)
        h = x
        outputs = []
        for call_id, layer in self.calls:
            if layer in self.bn_instances and ({"batchMean", "batchVariance"} & want):
                # The statistics BatchNorm1d normalizes with: mean and biased variance of the call input [P2].
                with torch.no_grad():
                    if "batchMean" in want:
                        entries.append(("batchMean", call_id, h.mean(0)))
                    if "batchVariance" in want:
                        entries.append(("batchVariance", call_id, h.var(0, unbiased=False)))
            if layer in self.dropouts:
                h, mask = self.dropout(h, call_id, self.dropouts[layer], masks or {})
                if "dropoutMask" in want:
                    entries.append(("dropoutMask", call_id, mask))
            else:
                h = self.modules[layer](h)
            if "outputGradient" in want:
                h.retain_grad()
            outputs.append((call_id, h))
            if "forward" in want:
                entries.append(("forward", call_id, h))
        loss = self.loss_of(h, y, t)
        for term in self.loss_term() or []:
            loss = loss + term
        loss.backward()
        entries.append(("loss", "", loss))
        if self.accuracy:
            entries.append(("trainAccuracy", "", (h.argmax(1) == y).to(self.dtype).mean()))
        if "outputGradient" in want:
            entries += [("outputGradient", cid, o.grad) for cid, o in outputs]
        if "parameterGradient" in want:
            entries += [("parameterGradient", n, p.grad.clone()) for n, p in self.params]
        # The traced gradients are the unclipped ones; the clipped gradients go into the update.
        if self.clip is not None:
            clip_gradients([p for _, p in self.params], self.clip)
        if self.keras_momentum:
            self.rescale_momentum()
        self.last_lr = self.optimizer.param_groups[0]["lr"]  # the rate of this update, before the scheduler moves on
        self.manual_decay()
        self.optimizer.step()
        if self.scheduler is not None:
            self.scheduler.step()  # after every update, so update k runs at the schedule's lr(k)
        self.updates += 1
        for kind, site, t in self.state_entries():
            if kind in want:
                entries.append((kind, site, t))
        return entries

    @torch.no_grad()
    def eval_forward(self, x, y, t, capture):
        want = set(capture)
        entries = []
        self.set_mode(False)
        try:
            h = x
            for call_id, layer in self.calls:
                h = self.modules[layer](h)
                if "evalOutput" in want:
                    entries.append(("evalOutput", call_id, h))
            entries.append(("evalLoss", "", self.loss_of(h, y, t)))
            if self.accuracy:
                entries.append(("evalAccuracy", "", (h.argmax(1) == y).to(self.dtype).mean()))
        finally:
            self.set_mode(True)
        return entries
