using Parity.Models;
using Parity.Tensors;

namespace Parity.Specs;

/// <summary>
/// A validated, framework-neutral scenario: the model, its initialization, data, optimizer, schedule and
/// capture policy. Canonical conventions only (docs/spec.md); every backend translates from these.
/// Built by <see cref="SpecLoader"/>, which rejects anything inconsistent before a backend runs.
/// </summary>
public sealed record ScenarioSpec(
    string Name,
    string Description,
    ulong Seed,
    DType DType,
    ModelSpec Model,
    InitSpec Init,
    OptimizerSpec Optimizer,
    DataSpec Data,
    ScheduleSpec Schedule,
    CaptureSpec Capture,
    ToleranceOverrides? Tolerances = null)
{
    /// <summary>Directory the spec was loaded from; relative data paths resolve against it.</summary>
    public string BaseDirectory { get; init; } = ".";

    /// <summary>The canonical JSON text of this spec (what workers receive and what the spec hash is taken over).</summary>
    public string CanonicalJson { get; init; } = "";

    /// <summary>The file the spec was loaded from, or null; errors found later (by the planner) name it too.</summary>
    public string? SourceFile { get; init; }

    /// <summary>The training loss and what it compares the outputs with (docs/spec.md#loss); softmax cross-entropy on the labels by default.</summary>
    public LossSpec Loss { get; init; } = LossSpec.Default;
}

/// <summary>The loss functions (docs/spec.md#loss); each reduces by the mean named on its member.</summary>
public enum LossFunction
{
    /// <summary>Softmax cross-entropy of the logits against (smoothed) one-hot labels, mean over the samples.</summary>
    SoftmaxCrossEntropy,

    /// <summary>(output - target)^2, mean over ALL elements (samples x outputs).</summary>
    MeanSquaredError,

    /// <summary>Binary cross-entropy from logits, max(z, 0) - z y + log(1 + exp(-|z|)), mean over ALL elements.</summary>
    BinaryCrossEntropyWithLogits,
}

/// <summary>What the loss compares the last call's outputs with.</summary>
public enum TargetSource
{
    /// <summary>The class labels (one-hot for the element-wise losses): a classification, so accuracy is reported.</summary>
    Labels,

    /// <summary>The inputs themselves (an autoencoder); the model's output width must equal its input width.</summary>
    Inputs,

    /// <summary>The float targets the data source provides per sample (the <c>regression</c> generator).</summary>
    Data,
}

/// <summary>
/// The loss: its function, label smoothing e (softmax cross-entropy only: targets (1-e) onehot + e/C, the PyTorch
/// and Keras categorical form) and its targets.
/// </summary>
public sealed record LossSpec(LossFunction Function, double LabelSmoothing = 0, TargetSource Targets = TargetSource.Labels)
{
    /// <summary>Softmax cross-entropy on the labels without smoothing: the default and the only loss before losses were a setting.</summary>
    public static readonly LossSpec Default = new(LossFunction.SoftmaxCrossEntropy);

    /// <summary>The spec's <c>type</c> string.</summary>
    public string Type => Function switch
    {
        LossFunction.MeanSquaredError => "mse",
        LossFunction.BinaryCrossEntropyWithLogits => "bce_with_logits",
        _ => "softmax_cross_entropy",
    };

    /// <summary>The spec's <c>targets</c> string.</summary>
    public string TargetsName => Targets switch
    {
        TargetSource.Inputs => "inputs",
        TargetSource.Data => "data",
        _ => "labels",
    };

    /// <summary>True when the targets are class labels: only then is an accuracy (argmax against the label) reported and traced.</summary>
    public bool HasAccuracy => Targets == TargetSource.Labels;

    /// <summary>True when the loss takes a float target per output (every loss but softmax cross-entropy).</summary>
    public bool ElementWise => Function != LossFunction.SoftmaxCrossEntropy;

    /// <summary>
    /// Over how many classes the smoothing mass e is spread: null (the canonical form) for the model's classes, e/C; 2 for
    /// the binary form y(1 - e) + e/2 that Keras and TF.js apply to sigmoid targets. Not a spec key: it describes what a
    /// backend computes instead (a declared convention, replayed by the reference; the label-smoothing-form detector).
    /// </summary>
    public int? SmoothingClasses { get; init; }

    /// <summary>
    /// How an element-wise loss reduces; <see cref="LossReduction.Mean"/> is the spec's (not a spec key: like
    /// <see cref="SmoothingClasses"/>, what a backend computes instead).
    /// </summary>
    public LossReduction Reduction { get; init; } = LossReduction.Mean;
}

/// <summary>Reductions of an element-wise loss that frameworks use (docs/conventions.md, losses).</summary>
public enum LossReduction
{
    /// <summary>Mean over ALL elements (PyTorch 'mean'; Keras's per-sample mean then batch mean): the spec's.</summary>
    Mean,

    /// <summary>Sum over all elements (PyTorch reduction='sum').</summary>
    Sum,

    /// <summary>Sum over each sample's outputs, mean over samples (Chainer sigmoid_cross_entropy normalize=False, a hand-written sum(axis=1).mean()).</summary>
    SumOverOutputs,
}

/// <summary>Layer instances and the ordered calls that use them; an instance named by two calls is shared.</summary>
public sealed record ModelSpec(int Inputs, IReadOnlyList<LayerSpec> Layers, IReadOnlyList<CallSpec> Calls)
{
    /// <summary>The instance named <paramref name="name"/>.</summary>
    public LayerSpec Layer(string name) => Layers.First(l => l.Name == name);

    /// <summary>Instances called at two or more call sites.</summary>
    public IEnumerable<LayerSpec> SharedLayers =>
        Layers.Where(l => Calls.Count(c => c.Layer == l.Name) > 1);
}

/// <summary>One call of a layer instance. <see cref="Id"/> names the call site in traces and reports.</summary>
public sealed record CallSpec(string Id, string Layer);

/// <summary>A layer instance.</summary>
public abstract record LayerSpec(string Name)
{
    /// <summary>The spec's <c>type</c> string.</summary>
    public abstract string Type { get; }

    /// <summary>Trainable parameters as (local name, shape), in canonical order and layout.</summary>
    public abstract IReadOnlyList<(string Name, int[] Shape)> ParameterShapes { get; }
}

/// <summary>y = x W^T + b with W stored [out, in] (the PyTorch layout; Keras kernels are the transpose).</summary>
public sealed record LinearSpec(string Name, int In, int Out, bool Bias, InitializerSpec WeightInit, InitializerSpec BiasInit)
    : LayerSpec(Name)
{
    /// <inheritdoc />
    public override string Type => "linear";

    /// <inheritdoc />
    public override IReadOnlyList<(string Name, int[] Shape)> ParameterShapes =>
        Bias ? [("weight", [Out, In]), ("bias", [Out])] : [("weight", [Out, In])];
}

/// <summary>Running-variance estimator stored by batchnorm (docs/conventions.md section 1).</summary>
public enum RunningVarianceEstimator
{
    /// <summary>var * N/(N-1): PyTorch, Chainer, TF fused kernels.</summary>
    Unbiased,

    /// <summary>var (1/N): Keras on 2-D inputs, TF.js, ONNX.</summary>
    Biased,
}

/// <summary>
/// Batch normalization over features. <see cref="Momentum"/> is the weight of the NEW batch statistic
/// (PyTorch meaning: run = (1-m) run + m batch); <see cref="Eps"/> sits inside the square root.
/// </summary>
public sealed record BatchNormSpec(string Name, int Features, double Momentum, double Eps, RunningVarianceEstimator RunningVariance, bool Affine)
    : LayerSpec(Name)
{
    /// <inheritdoc />
    public override string Type => "batchnorm";

    /// <inheritdoc />
    public override IReadOnlyList<(string Name, int[] Shape)> ParameterShapes =>
        Affine ? [("gamma", [Features]), ("beta", [Features])] : [];
}

/// <summary>Layer normalization over the feature axis (cs231n, seed 003), eps inside the square root.</summary>
public sealed record LayerNormSpec(string Name, int Features, double Eps, bool Affine) : LayerSpec(Name)
{
    /// <inheritdoc />
    public override string Type => "layernorm";

    /// <inheritdoc />
    public override IReadOnlyList<(string Name, int[] Shape)> ParameterShapes =>
        Affine ? [("gamma", [Features]), ("beta", [Features])] : [];
}

/// <summary>max(x, 0).</summary>
public sealed record ReluSpec(string Name) : LayerSpec(Name)
{
    /// <inheritdoc />
    public override string Type => "relu";

    /// <inheritdoc />
    public override IReadOnlyList<(string Name, int[] Shape)> ParameterShapes => [];
}

/// <summary>The identity (Keras <c>Activation('linear')</c>, seed 002).</summary>
public sealed record IdentitySpec(string Name) : LayerSpec(Name)
{
    /// <inheritdoc />
    public override string Type => "identity";

    /// <inheritdoc />
    public override IReadOnlyList<(string Name, int[] Shape)> ParameterShapes => [];
}

/// <summary>Where the masks of the dropout layers come from (docs/spec.md#dropout).</summary>
public enum DropoutMasks
{
    /// <summary>
    /// The harness draws every mask from the spec's seed and every backend applies that same mask, so only the math
    /// (x * m / (1 - p)) is compared.
    /// </summary>
    Harness,

    /// <summary>
    /// Each framework draws its own mask with its own RNG: a declared, expected difference from the harness's masks and
    /// between frameworks.
    /// </summary>
    Framework,
}

/// <summary>
/// Inverted dropout: in training y = x * m / (1 - p) with m 0 or 1 per element (0 with probability <see cref="P"/>, the
/// DROP probability, as in PyTorch and Keras; TF1's keep_prob means the opposite); identity in eval.
/// </summary>
public sealed record DropoutSpec(string Name, double P, DropoutMasks Masks) : LayerSpec(Name)
{
    /// <inheritdoc />
    public override string Type => "dropout";

    /// <inheritdoc />
    public override IReadOnlyList<(string Name, int[] Shape)> ParameterShapes => [];

    /// <summary>1 / (1 - p): the scale of a kept element in training.</summary>
    public double KeptScale => 1 / (1 - P);
}

/// <summary>
/// An elementwise activation without parameters to train. <see cref="Function"/> and <see cref="Parameter"/> are what
/// every backend maps (docs/spec.md#activations); the formulas live once, in <see cref="Models.Activations"/>.
/// </summary>
public abstract record ActivationSpec(string Name) : LayerSpec(Name)
{
    /// <summary>The function this layer applies.</summary>
    public abstract ActivationFunction Function { get; }

    /// <summary>The function's one setting: the LeakyReLU negative slope or the ELU alpha; 0 for the others.</summary>
    public virtual double Parameter => 0;

    /// <inheritdoc />
    public override IReadOnlyList<(string Name, int[] Shape)> ParameterShapes => [];
}

/// <summary>The activation functions of <see cref="ActivationSpec"/> (docs/spec.md#activations).</summary>
public enum ActivationFunction
{
    /// <summary>tanh(x).</summary>
    Tanh,

    /// <summary>1 / (1 + exp(-x)).</summary>
    Sigmoid,

    /// <summary>x for x &gt; 0, else slope * x.</summary>
    LeakyRelu,

    /// <summary>x * Phi(x) = x/2 (1 + erf(x / sqrt 2)).</summary>
    GeluExact,

    /// <summary>x/2 (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))).</summary>
    GeluTanh,

    /// <summary>x * sigmoid(x) (swish with beta 1).</summary>
    Silu,

    /// <summary>x for x &gt; 0, else alpha (exp(x) - 1).</summary>
    Elu,
}

/// <summary>tanh.</summary>
public sealed record TanhSpec(string Name) : ActivationSpec(Name)
{
    /// <inheritdoc />
    public override string Type => "tanh";

    /// <inheritdoc />
    public override ActivationFunction Function => ActivationFunction.Tanh;
}

/// <summary>The logistic sigmoid.</summary>
public sealed record SigmoidSpec(string Name) : ActivationSpec(Name)
{
    /// <inheritdoc />
    public override string Type => "sigmoid";

    /// <inheritdoc />
    public override ActivationFunction Function => ActivationFunction.Sigmoid;
}

/// <summary>
/// LeakyReLU with its negative slope always written out: the frameworks' defaults differ (PyTorch 0.01, the Keras
/// layer 0.3, tf.nn.leaky_relu 0.2; docs/conventions.md section 6).
/// </summary>
public sealed record LeakyReluSpec(string Name, double Slope) : ActivationSpec(Name)
{
    /// <inheritdoc />
    public override string Type => "leaky_relu";

    /// <inheritdoc />
    public override ActivationFunction Function => ActivationFunction.LeakyRelu;

    /// <inheritdoc />
    public override double Parameter => Slope;
}

/// <summary>How GELU evaluates the Gaussian CDF.</summary>
public enum GeluApproximation
{
    /// <summary>With erf (PyTorch approximate='none', Keras approximate=False, ONNX approximate="none").</summary>
    Exact,

    /// <summary>With the tanh formula (PyTorch approximate='tanh', TF.js 'gelu_new').</summary>
    Tanh,
}

/// <summary>GELU, exact or with the tanh approximation.</summary>
public sealed record GeluSpec(string Name, GeluApproximation Approximation) : ActivationSpec(Name)
{
    /// <inheritdoc />
    public override string Type => "gelu";

    /// <inheritdoc />
    public override ActivationFunction Function =>
        Approximation == GeluApproximation.Exact ? ActivationFunction.GeluExact : ActivationFunction.GeluTanh;
}

/// <summary>SiLU (swish with beta 1).</summary>
public sealed record SiluSpec(string Name) : ActivationSpec(Name)
{
    /// <inheritdoc />
    public override string Type => "silu";

    /// <inheritdoc />
    public override ActivationFunction Function => ActivationFunction.Silu;
}

/// <summary>ELU with its alpha (1 in every framework by default).</summary>
public sealed record EluSpec(string Name, double Alpha) : ActivationSpec(Name)
{
    /// <inheritdoc />
    public override string Type => "elu";

    /// <inheritdoc />
    public override ActivationFunction Function => ActivationFunction.Elu;

    /// <inheritdoc />
    public override double Parameter => Alpha;
}

/// <summary>A named initializer; <see cref="Std"/> is used by <c>normal</c> (cs231n weight_scale).</summary>
public sealed record InitializerSpec(string Kind, double Std = 0)
{
    /// <summary>Known initializer names (docs/spec.md).</summary>
    public static readonly IReadOnlyList<string> Kinds =
        ["he_normal", "he_normal_truncated", "glorot_uniform", "lecun_normal", "pytorch_default", "normal", "zeros", "ones"];
}

/// <summary>How initial tensors are chosen.</summary>
public enum InitMode
{
    /// <summary>The harness draws every initial tensor once and loads the same numbers into every backend.</summary>
    Injected,

    /// <summary>Each framework uses its own seeded initializers (RNG-stream effects show up).</summary>
    Framework,
}

/// <summary>Initialization mode and seed.</summary>
/// <param name="Mode">Injected (the harness's initial state in every backend) or framework (each framework's own initializers).</param>
/// <param name="Seed">Seed of the harness's initializers and of the frameworks' own.</param>
/// <param name="From">
/// A trace directory whose step-0 record holds the initial parameters and running statistics to inject instead of
/// drawing them (e.g. the weights of an imported ONNX model); relative to the spec's directory. Null: draw them.
/// </param>
public sealed record InitSpec(InitMode Mode, ulong Seed, string? From = null);

/// <summary>The Adam epsilon form (docs/conventions.md section 3).</summary>
public enum EpsilonForm
{
    /// <summary>theta -= lr * m_hat / (sqrt(v_hat) + eps): PyTorch, TF.js.</summary>
    SqrtVHat,

    /// <summary>alpha_t = lr sqrt(1-b2^t)/(1-b1^t); theta -= alpha_t m / (sqrt(v) + eps): tf.keras, TF1, Chainer.</summary>
    EpsilonHat,
}

/// <summary>An optimizer.</summary>
public abstract record OptimizerSpec(double LearningRate)
{
    /// <summary>The spec's <c>type</c> string.</summary>
    public abstract string Type { get; }

    /// <summary>
    /// The per-parameter state the optimizer keeps between steps, by canonical slot name, each in the parameter's shape
    /// (traced as <c>optimizerSlot:&lt;parameter&gt;/&lt;slot&gt;</c>, docs/trace.md).
    /// </summary>
    public abstract IReadOnlyList<string> Slots { get; }

    /// <summary>
    /// The value every element of <paramref name="slot"/> holds before the first update (0 unless the optimizer says
    /// otherwise: RMSprop's mean square, Adagrad's accumulator).
    /// </summary>
    public virtual double SlotInitialValue(string slot) => 0;
    /// <summary>Weight decay applied with this optimizer's steps, or null for none (docs/spec.md, weight decay).</summary>
    public WeightDecaySpec? WeightDecay { get; init; }

    /// <summary>How the learning rate changes from update to update (<c>optimizer.schedule</c>); constant by default.</summary>
    public LearningRateSchedule Schedule { get; init; } = ConstantSchedule.Instance;

    /// <summary>Gradient clipping before the update (<c>optimizer.clip</c>), or null for none.</summary>
    public GradientClipping? Clipping { get; init; }

    /// <summary>The learning rate of update <paramref name="k"/>, 0-based: the k-th update after k updates were done (<see cref="LearningRateSchedule"/>).</summary>
    public double LearningRateAt(int k) => Schedule.At(LearningRate, k);
}

/// <summary>How weight decay enters a training step (docs/conventions.md, weight decay).</summary>
public enum WeightDecayForm
{
    /// <summary>
    /// A gradient term added before the optimizer: g' = g + rate p, so the decay passes through momentum and Adam's moments
    /// (PyTorch SGD/Adam/RMSprop/Adagrad <c>weight_decay=</c>, Chainer's WeightDecay hook). The traced gradient is g.
    /// </summary>
    Coupled,

    /// <summary>
    /// A shrink of the parameter itself before the optimizer's update, from the pre-update value: p -= lr rate p
    /// (PyTorch AdamW, Keras <c>weight_decay=</c>) or p -= rate p (TF1 contrib AdamW), never entering the optimizer's state.
    /// </summary>
    Decoupled,

    /// <summary>
    /// A loss term: loss += coefficient sum(w^2), so the gradient gains 2 coefficient w (Keras and TF.js
    /// <c>regularizers.l2</c>). The traced loss and gradients include it; PyTorch's weight_decay equals 2 coefficient.
    /// </summary>
    L2Loss,
}

/// <summary>Which parameters weight decay applies to.</summary>
public enum DecayedParameters
{
    /// <summary>Every trainable parameter: weights, biases, normalization gamma and beta (a PyTorch parameter group's default).</summary>
    All,

    /// <summary>Linear weights only, not biases nor normalization parameters (Keras <c>kernel_regularizer</c>).</summary>
    Weights,
}

/// <summary>Weight decay with an optimizer: its form, its rate (or loss coefficient) and the parameters it applies to.</summary>
/// <param name="Rate">
/// <see cref="WeightDecayForm.Coupled"/> and <see cref="WeightDecayForm.Decoupled"/>: the rate wd;
/// <see cref="WeightDecayForm.L2Loss"/>: the loss coefficient l2 (the gradient term is 2 l2 w).
/// </param>
/// <param name="Form">Where the decay enters the step.</param>
/// <param name="Parameters">Which parameters decay.</param>
/// <param name="MultiplyByLearningRate">Decoupled only: whether the shrink is lr rate p (true) or rate p (false).</param>
public sealed record WeightDecaySpec(double Rate, WeightDecayForm Form, DecayedParameters Parameters, bool MultiplyByLearningRate = true)
{
    /// <summary>The spec's <c>form</c> string.</summary>
    public string FormName => Form switch
    {
        WeightDecayForm.Coupled => "coupled",
        WeightDecayForm.Decoupled => "decoupled",
        _ => "l2Loss",
    };

    /// <summary>Whether the decay applies to <paramref name="parameter"/>.</summary>
    public bool Applies(ParameterInfo parameter)
    {
        ArgumentNullException.ThrowIfNull(parameter);
        return Parameters == DecayedParameters.All || parameter.Local == "weight";
    }

    /// <summary>The factor k of a decoupled shrink p -= k p at learning rate <paramref name="lr"/>.</summary>
    public double DecoupledFactor(double lr) => MultiplyByLearningRate ? lr * Rate : Rate;

    /// <summary>
    /// The rate of the gradient term this decay adds: rate for <see cref="WeightDecayForm.Coupled"/>, 2 coefficient for
    /// <see cref="WeightDecayForm.L2Loss"/> (the derivative of coefficient w^2); 0 for <see cref="WeightDecayForm.Decoupled"/>.
    /// </summary>
    public double GradientRate => Form switch
    {
        WeightDecayForm.Coupled => Rate,
        WeightDecayForm.L2Loss => 2 * Rate,
        _ => 0,
    };
}

/// <summary>SGD with (heavy-ball, PyTorch form) momentum: v = mu v + g; theta -= lr v.</summary>
public sealed record SgdSpec(double LearningRate, double Momentum) : OptimizerSpec(LearningRate)
{
    /// <inheritdoc />
    public override string Type => "sgd";

    /// <summary><c>momentum</c>: PyTorch's momentum_buffer v (none without momentum).</summary>
    public override IReadOnlyList<string> Slots => Momentum > 0 ? ["momentum"] : [];

    /// <summary>Nesterov momentum: p -= lr (g + mu b) with the new b (PyTorch's nesterov=True; Keras's p += mu m - lr g is the same step).</summary>
    public bool Nesterov { get; init; }

    /// <summary>Where the momentum keeps the learning rate; it matters only when the rate changes (<see cref="Specs.MomentumForm"/>).</summary>
    public MomentumForm MomentumForm { get; init; } = MomentumForm.PyTorch;

    /// <summary>
    /// The factor the momentum buffer b is multiplied by in update <paramref name="k"/> (0-based) before g is added:
    /// mu in the PyTorch form, mu lr_{k-1} / lr_k in the Keras form (<see cref="Specs.MomentumForm.Keras"/>), in float64.
    /// </summary>
    public double VelocityDecayAt(int k) =>
        MomentumForm == MomentumForm.Keras && k > 0 ? Momentum * (LearningRateAt(k - 1) / LearningRateAt(k)) : Momentum;
}

/// <summary>How an Adam implementation holds its betas (docs/conventions.md section 3).</summary>
public enum BetaPrecision
{
    /// <summary>The betas as written, everywhere: decay beta, gradient scale 1 - beta, bias correction 1 - beta^t (PyTorch, whose constants are Python doubles).</summary>
    Float64,

    /// <summary>
    /// The betas rounded to float32 for the decay, and beta^t kept as a float32 running product (rounded after every
    /// multiplication) for the bias correction 1 - beta^t, itself formed in float32; the gradient is scaled by 1 - beta
    /// taken from the written value (TF.js adam_optimizer: the float32 variables accBeta1, accBeta2). At beta2 = 0.999,
    /// 1 - 0.999f is 1.3e-5 away from 0.001, so the first steps move 6.4e-6 (relative) less than under
    /// <see cref="Float64"/>, and the running product's rounding moves each later step by up to about 1e-5.
    /// </summary>
    Float32,
}

/// <summary>Adam with explicit betas, eps, epsilon form and beta precision.</summary>
public sealed record AdamSpec(double LearningRate, double Beta1, double Beta2, double Eps, EpsilonForm EpsilonForm,
    BetaPrecision BetaPrecision = BetaPrecision.Float64) : OptimizerSpec(LearningRate)
{
    /// <inheritdoc />
    public override string Type => "adam";

    /// <summary><c>m</c> and <c>v</c>: the biased first and second moment estimates (PyTorch's exp_avg, exp_avg_sq).</summary>
    public override IReadOnlyList<string> Slots => ["m", "v"];

    /// <summary>
    /// The constants of update <paramref name="t"/> (1-based), computed in float64 once for every implementation of the
    /// update (each converts them to its own precision): the decays, the gradient scales and the bias corrections.
    /// </summary>
    public AdamConstants ConstantsAt(int t)
    {
        if (t < 1) throw new ArgumentOutOfRangeException(nameof(t), t, "the Adam step count starts at 1");
        if (BetaPrecision == BetaPrecision.Float64)
            return new AdamConstants(Beta1, Beta2, 1 - Beta1, 1 - Beta2, 1 - Math.Pow(Beta1, t), 1 - Math.Pow(Beta2, t));
        float b1 = (float)Beta1, b2 = (float)Beta2, power1 = 1f, power2 = 1f;
        // The float32 running products reach 0 (and stay there) within about 10^5 steps for betas below 0.9999.
        for (int k = 0; k < t && (power1 != 0 || power2 != 0); k++)
        {
            power1 *= b1;
            power2 *= b2;
        }
        return new AdamConstants(b1, b2, 1 - Beta1, 1 - Beta2, 1f - power1, 1f - power2);
    }
}

/// <summary>Where an RMSprop or Adagrad epsilon goes (docs/conventions.md, "RMSprop" and "Adagrad").</summary>
public enum EpsilonPlacement
{
    /// <summary>denominator sqrt(s) + eps: PyTorch, Chainer, tf.keras legacy Adagrad.</summary>
    Outside,

    /// <summary>denominator sqrt(s + eps): Keras 3, TF1's RMSprop kernel, TF.js.</summary>
    Inside,
}

/// <summary>
/// RMSprop: v = rho v + (1-rho) g^2; centered: a = rho a + (1-rho) g and s = v - a^2, else s = v; d = sqrt(s) + eps
/// (<see cref="EpsilonPlacement.Outside"/>) or sqrt(s + eps) (<see cref="EpsilonPlacement.Inside"/>); without momentum
/// p -= lr g / d; with momentum, in the PyTorch form, b = mu b + g / d; p -= lr b (TF and Keras keep lr b instead, the
/// same parameters under a constant lr).
/// </summary>
/// <param name="LearningRate">lr.</param>
/// <param name="Rho">The decay of the mean square (PyTorch alpha, TF decay, Keras rho).</param>
/// <param name="Eps">eps, 0 allowed.</param>
/// <param name="EpsilonPlacement">Outside or inside the square root.</param>
/// <param name="MeanSquareInit">The mean square's value before the first update (0; TF1: 1).</param>
/// <param name="Momentum">mu; 0: no momentum buffer.</param>
/// <param name="Centered">Whether the mean gradient is subtracted from the mean square.</param>
public sealed record RmspropSpec(double LearningRate, double Rho, double Eps, EpsilonPlacement EpsilonPlacement, double MeanSquareInit,
    double Momentum, bool Centered) : OptimizerSpec(LearningRate)
{
    /// <inheritdoc />
    public override string Type => "rmsprop";

    /// <summary>
    /// <c>meanSquare</c> (PyTorch square_avg, TF ms/rms); <c>momentum</c> when mu &gt; 0, the PyTorch buffer b (TF's mom is
    /// lr b); <c>meanGradient</c> when centered (PyTorch grad_avg, TF mg).
    /// </summary>
    public override IReadOnlyList<string> Slots => [
        "meanSquare",
        .. Momentum > 0 ? (string[])["momentum"] : [],
        .. Centered ? (string[])["meanGradient"] : [],
    ];

    /// <inheritdoc />
    public override double SlotInitialValue(string slot) => slot == "meanSquare" ? MeanSquareInit : 0;
}

/// <summary>Adagrad: s += g^2; p -= lr g / (sqrt(s) + eps) (<see cref="EpsilonPlacement.Outside"/>) or lr g / sqrt(s + eps) (inside).</summary>
/// <param name="LearningRate">lr.</param>
/// <param name="InitialAccumulator">The accumulator's value before the first update (PyTorch, Chainer: 0; TF, Keras, TF.js: 0.1).</param>
/// <param name="Eps">eps, 0 allowed (TF1 has none).</param>
/// <param name="EpsilonPlacement">Outside or inside the square root.</param>
public sealed record AdagradSpec(double LearningRate, double InitialAccumulator, double Eps, EpsilonPlacement EpsilonPlacement) : OptimizerSpec(LearningRate)
{
    /// <inheritdoc />
    public override string Type => "adagrad";

    /// <summary><c>accumulator</c>: the running sum of squared gradients (PyTorch sum, TF accumulator).</summary>
    public override IReadOnlyList<string> Slots => ["accumulator"];

    /// <inheritdoc />
    public override double SlotInitialValue(string slot) => InitialAccumulator;
}

/// <summary>The constants of one Adam update (<see cref="AdamSpec.ConstantsAt"/>).</summary>
/// <param name="Decay1">beta1 as the decay of m.</param>
/// <param name="Decay2">beta2 as the decay of v.</param>
/// <param name="Scale1">1 - beta1, the scale of the gradient in m.</param>
/// <param name="Scale2">1 - beta2, the scale of the squared gradient in v.</param>
/// <param name="Correction1">1 - beta1^t.</param>
/// <param name="Correction2">1 - beta2^t.</param>
public sealed record AdamConstants(double Decay1, double Decay2, double Scale1, double Scale2, double Correction1, double Correction2);

/// <summary>Where samples come from.</summary>
public abstract record DataSourceSpec
{
    /// <summary>The spec's <c>type</c> string.</summary>
    public abstract string Type { get; }
}

/// <summary>IDX files (MNIST layout; raw or .gz), pixels scaled to [0,1] when <see cref="Normalize"/>.</summary>
public sealed record IdxSourceSpec(string Images, string Labels, int? Limit, bool Normalize) : DataSourceSpec
{
    /// <inheritdoc />
    public override string Type => "idx";
}

/// <summary>
/// Seeded synthetic samples. <c>teacher</c>: Gaussian inputs labelled by the argmax of a random
/// one-hidden-layer teacher; <c>gaussian</c>: plain normal(0,1) inputs and uniform random labels;
/// <c>regression</c>: Gaussian inputs with float targets, the teacher's <see cref="Classes"/> outputs before the argmax
/// (labels are their argmax).
/// </summary>
public sealed record SyntheticSourceSpec(string Generator, int Samples, int Features, int Classes, ulong Seed, ulong TeacherSeed) : DataSourceSpec
{
    /// <inheritdoc />
    public override string Type => "synthetic";

    /// <summary>True when the generator gives float targets beside the labels.</summary>
    public bool HasTargets => Generator == "regression";
}

/// <summary>
/// A CSV file of numbers with a header row (docs/spec.md, "Sources"): the column <see cref="Label"/> holds class indices,
/// <see cref="Features"/> (null: every other column, in file order) the inputs.
/// </summary>
public sealed record CsvSourceSpec(string Path, string Label, IReadOnlyList<string>? Features, char Separator, int? Limit) : DataSourceSpec
{
    /// <inheritdoc />
    public override string Type => "csv";
}

/// <summary>
/// NumPy arrays: <see cref="Inputs"/> of shape [count, ...] (each sample flattened in C order) and <see cref="Labels"/>
/// of shape [count] holding class indices. With <see cref="Archive"/> set, both name members of that <c>.npz</c>
/// archive; otherwise they are <c>.npy</c> file paths.
/// </summary>
public sealed record NumpySourceSpec(string? Archive, string Inputs, string Labels, int? Limit) : DataSourceSpec
{
    /// <inheritdoc />
    public override string Type => Archive is null ? "npy" : "npz";
}

/// <summary>Train and eval sources, batching and shuffling.</summary>
public sealed record DataSpec(DataSourceSpec Train, DataSourceSpec? Eval, int BatchSize, bool Shuffle, ulong ShuffleSeed, int? EvalLimit);

/// <summary>Length of training and evaluation cadence. Exactly one of <see cref="Steps"/>/<see cref="Epochs"/> is set by the spec.</summary>
/// <param name="Steps">Optimizer steps, or null.</param>
/// <param name="Epochs">Epochs, or null.</param>
/// <param name="EvalEvery">Evaluate after every k-th step (and after the last); 0: only after the last.</param>
/// <param name="EvalBatchSize">
/// Samples per evaluation call (<c>evaluation.batchSize</c>); null: the training batch size. The eval set is evaluated
/// in chunks of this size and the chunks' records are merged (docs/spec.md, "Batching").
/// </param>
public sealed record ScheduleSpec(int? Steps, int? Epochs, int EvalEvery, int? EvalBatchSize = null);

/// <summary>Which steps are captured in full and which tensor kinds; <see cref="Steps"/> null is the automatic policy (<see cref="CaptureSteps.Auto"/>).</summary>
public sealed record CaptureSpec(CaptureSteps? Steps, IReadOnlySet<Tracing.TensorKind> Kinds);

/// <summary>
/// A step selection: every step, or any union of the first <see cref="First"/> steps, the multiples of
/// <see cref="Every"/> and the last step. A captured step is step-checked: the step before it is recorded with the
/// state (parameters, running statistics, optimizer state) the check replays it from (docs/spec.md#capture).
/// </summary>
/// <param name="All">Every step.</param>
/// <param name="First">Steps 1..First (0 for none).</param>
/// <param name="Every">Steps divisible by Every (0 for none).</param>
/// <param name="Last">The last step too.</param>
public sealed record CaptureSteps(bool All, int First, int Every, bool Last)
{
    /// <summary>Runs up to this many steps are captured (and step-checked) at every step by the automatic policy.</summary>
    public const int AutoAllSteps = 500;

    /// <summary>Steps the automatic policy captures first in a longer run.</summary>
    public const int AutoFirst = 100;

    /// <summary>About how many further steps the automatic policy spreads over the rest of a longer run.</summary>
    public const int AutoSpread = 200;

    /// <summary>Every step.</summary>
    public static readonly CaptureSteps Everything = new(true, 0, 0, true);

    /// <summary>
    /// The policy when a spec gives none: every step of a run of up to <see cref="AutoAllSteps"/> steps; a longer run
    /// captures the first <see cref="AutoFirst"/> steps, every k-th step with k = ceil(total / <see cref="AutoSpread"/>),
    /// and the last, so about 300 steps are checked whatever the length.
    /// </summary>
    public static CaptureSteps Auto(int totalSteps) => totalSteps <= AutoAllSteps
        ? Everything
        : new CaptureSteps(false, AutoFirst, (totalSteps + AutoSpread - 1) / AutoSpread, true);

    /// <summary>True when step <paramref name="step"/> (1-based) of <paramref name="total"/> is captured.</summary>
    public bool Includes(int step, int total) =>
        All || step <= First || (Every > 0 && step % Every == 0) || (Last && step == total);
}

/// <summary>Per-spec tolerance overrides, read by the comparison project (docs/tolerances.md).</summary>
public sealed record ToleranceOverrides(IReadOnlyDictionary<string, (double Atol, double Rtol)> ByKind, double? EnvelopeMultiple, double? EnvelopeFloor);
