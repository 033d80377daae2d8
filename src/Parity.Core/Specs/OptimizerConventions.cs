using System.Numerics;

namespace Parity.Specs;

/// <summary>
/// How the learning rate changes over training (<c>optimizer.schedule</c>, docs/spec.md "Learning-rate schedules").
/// The schedule is a function of k, the number of optimizer updates done before the update it applies to: update k
/// (0-based, the first update is k = 0) uses <see cref="At"/>(k). That is what TF's global_step and Keras's
/// optimizer.iterations count (both are incremented after the update); a PyTorch scheduler matches it only when its
/// step() is called after every optimizer.step(), not once per epoch.
/// </summary>
public abstract record LearningRateSchedule
{
    /// <summary>The spec's <c>type</c> string.</summary>
    public abstract string Type { get; }

    /// <summary>The learning rate of update <paramref name="k"/> (0-based), computed in float64 for every backend.</summary>
    /// <param name="lr">The optimizer's base learning rate (<see cref="OptimizerSpec.LearningRate"/>).</param>
    /// <param name="k">Updates done before this one.</param>
    public abstract double At(double lr, int k);

    /// <summary>Whether the learning rate is the same at every update.</summary>
    public virtual bool IsConstant => false;
}

/// <summary>The base learning rate at every update (the default).</summary>
public sealed record ConstantSchedule : LearningRateSchedule
{
    /// <summary>The one instance.</summary>
    public static ConstantSchedule Instance { get; } = new();

    /// <inheritdoc />
    public override string Type => "constant";

    /// <inheritdoc />
    public override double At(double lr, int k) => lr;

    /// <inheritdoc />
    public override bool IsConstant => true;
}

/// <summary>lr gamma^floor(k / stepSize): PyTorch's StepLR stepped after every update.</summary>
public sealed record StepSchedule(int StepSize, double Gamma) : LearningRateSchedule
{
    /// <inheritdoc />
    public override string Type => "step";

    /// <inheritdoc />
    public override double At(double lr, int k) => lr * Math.Pow(Gamma, k / StepSize);
}

/// <summary>
/// lr rate^(k / decaySteps), the exponent floored when <see cref="Staircase"/>: tf.train.exponential_decay and Keras's
/// ExponentialDecay with the same arguments.
/// </summary>
public sealed record ExponentialSchedule(int DecaySteps, double Rate, bool Staircase) : LearningRateSchedule
{
    /// <inheritdoc />
    public override string Type => "exponential";

    /// <inheritdoc />
    public override double At(double lr, int k) => lr * Math.Pow(Rate, Staircase ? k / DecaySteps : (double)k / DecaySteps);
}

/// <summary>
/// Half a cosine from the base rate down to <see cref="MinLearningRate"/> over <see cref="DecaySteps"/> updates, then
/// constant: minLr + (lr - minLr) (1 + cos(pi min(k, decaySteps) / decaySteps)) / 2. Keras's CosineDecay with
/// alpha = minLr / lr; PyTorch's CosineAnnealingLR(T_max = decaySteps, eta_min = minLr) agrees up to k = decaySteps (it
/// rises again after) and computes it recursively, so the PyTorch backends run the closed form through LambdaLR.
/// </summary>
public sealed record CosineSchedule(int DecaySteps, double MinLearningRate) : LearningRateSchedule
{
    /// <inheritdoc />
    public override string Type => "cosine";

    /// <inheritdoc />
    public override double At(double lr, int k) =>
        MinLearningRate + (lr - MinLearningRate) * (1 + Math.Cos(Math.PI * Math.Min(k, DecaySteps) / DecaySteps)) / 2;
}

/// <summary>Which gradients a norm clip measures together (<c>optimizer.clip.type</c>).</summary>
public enum ClipScope
{
    /// <summary>One norm over all parameter gradients, every gradient scaled by the same factor (torch clip_grad_norm_, tf.clip_by_global_norm, Keras global_clipnorm, Chainer GradientClipping).</summary>
    GlobalNorm,

    /// <summary>Each parameter's gradient scaled by its own norm (Keras clipnorm, tf.clip_by_norm).</summary>
    PerTensorNorm,

    /// <summary>Every element clamped to [-value, value] (clip_grad_value_, Keras clipvalue, tf.clip_by_value).</summary>
    Value,
}

/// <summary>
/// Gradient clipping before the optimizer update (<c>optimizer.clip</c>). Norm scopes scale a gradient g by
/// min(1, maxNorm / (norm + eps)), norm the Euclidean norm of the gradients in scope; eps is PyTorch's 1e-6 in
/// clip_grad_norm_ and 0 in Keras, TF and Chainer. <see cref="ClipScope.Value"/> clamps each element to
/// [-<see cref="Threshold"/>, <see cref="Threshold"/>]. The traced parameter gradients are the unclipped ones
/// (what backpropagation produced); the clipped gradient goes into the optimizer (and any weight decay after it).
/// </summary>
/// <param name="Scope">What a norm is taken over, or clipping by value.</param>
/// <param name="Threshold">The maximum norm (norm scopes) or the maximum absolute value (<see cref="ClipScope.Value"/>).</param>
/// <param name="Eps">Added to the norm in the denominator (norm scopes only).</param>
public sealed record GradientClipping(ClipScope Scope, double Threshold, double Eps)
{
    /// <summary>The spec's <c>type</c> string.</summary>
    public string Type => Scope switch
    {
        ClipScope.GlobalNorm => "globalNorm",
        ClipScope.PerTensorNorm => "norm",
        _ => "value",
    };

    /// <summary>The factor a gradient whose scope has Euclidean norm <paramref name="norm"/> is multiplied by (norm scopes), in float64.</summary>
    public double NormScale(double norm) => Math.Min(1.0, Threshold / (norm + Eps));

    /// <summary>
    /// The gradients after the clip, in new arrays (by parameter name; the input, what gets traced, is not changed): norms
    /// summed in float64 in the dictionary's order, and the scale min(1, maxNorm / (norm + eps)) rounded once to T, as a
    /// framework multiplies by one scalar (a scale of 1 leaves a gradient as it is, as PyTorch's clamped 1.0 does); by
    /// value, each element clamped in T. The one implementation every C# backend runs.
    /// </summary>
    public Dictionary<string, T[]> Apply<T>(IReadOnlyDictionary<string, T[]> gradients) where T : unmanaged, IFloatingPointIeee754<T>
    {
        ArgumentNullException.ThrowIfNull(gradients);
        var clipped = gradients.ToDictionary(g => g.Key, g => (T[])g.Value.Clone());
        if (Scope == ClipScope.Value)
        {
            T limit = T.CreateTruncating(Threshold);
            foreach (var g in clipped.Values)
                for (int i = 0; i < g.Length; i++) g[i] = T.Clamp(g[i], -limit, limit);
            return clipped;
        }
        double global = Scope == ClipScope.GlobalNorm ? Math.Sqrt(clipped.Values.Sum(SumOfSquares)) : 0;
        foreach (var g in clipped.Values)
        {
            double scale = NormScale(Scope == ClipScope.GlobalNorm ? global : Math.Sqrt(SumOfSquares(g)));
            if (scale >= 1) continue;
            T s = T.CreateTruncating(scale);
            for (int i = 0; i < g.Length; i++) g[i] *= s;
        }
        return clipped;
    }

    /// <summary>The sum of the squares of <paramref name="values"/>, in float64.</summary>
    public static double SumOfSquares<T>(T[] values) where T : unmanaged, IFloatingPointIeee754<T>
    {
        ArgumentNullException.ThrowIfNull(values);
        double sum = 0;
        foreach (var v in values)
        {
            double d = double.CreateTruncating(v);
            sum += d * d;
        }
        return sum;
    }
}

/// <summary>
/// Where SGD's momentum keeps the learning rate (<c>optimizer.momentumForm</c>, docs/conventions.md section 8a). Both
/// forms trace the same slot, PyTorch's momentum buffer b (the velocity in gradient units): the parameter moves by
/// -lr_k b_k (without Nesterov).
/// </summary>
public enum MomentumForm
{
    /// <summary>b = mu b + g; p -= lr b (PyTorch, TF1 MomentumOptimizer, TF.js): the whole velocity at the current lr.</summary>
    PyTorch,

    /// <summary>
    /// m = mu m - lr g; p += m (Keras, Chainer): each gradient keeps the lr of its own update. Traced as b = -m / lr_k
    /// (lr_k the rate of the update that made m), which gives b = mu (lr_{k-1} / lr_k) b + g; p -= lr_k b. Under a
    /// constant lr it is the PyTorch form, m = -lr b.
    /// </summary>
    Keras,
}
