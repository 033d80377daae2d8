namespace Parity.Diagnostics;

/// <summary>The cause ids, exactly as docs/causes.md lists them.</summary>
public static class CauseIds
{
    /// <summary>A batchnorm instance at two or more call sites, its running statistics updated more than once per step.</summary>
    public const string SharedStatefulLayer = "shared-stateful-layer";

    /// <summary>Running statistics match when the momentum is read as 1 - m.</summary>
    public const string BnMomentumConvention = "bn-momentum-convention";

    /// <summary>Running variances differ by N/(N-1).</summary>
    public const string BnVarianceEstimator = "bn-variance-estimator";

    /// <summary>Normalized outputs fit another eps, or eps outside the square root.</summary>
    public const string BnEpsilon = "bn-epsilon";

    /// <summary>Updates match the other Adam epsilon form.</summary>
    public const string AdamEpsilonForm = "adam-epsilon-form";

    /// <summary>Running statistics stay at their initial values while training runs.</summary>
    public const string RunningStatsNotUpdated = "running-stats-not-updated";

    /// <summary>Eval accuracy lags train accuracy while the running statistics are still warming up.</summary>
    public const string SlowRunningStatsWarmup = "slow-running-stats-warmup";

    /// <summary>Eval-mode outputs computed with batch statistics, or train-mode outputs with running statistics.</summary>
    public const string TrainEvalMode = "train-eval-mode";

    /// <summary>A LeakyReLU's forward output fits another negative slope than the spec's.</summary>
    public const string LeakyReluSlope = "leaky-relu-slope";

    /// <summary>A GELU's forward output is the other form (exact erf or tanh approximation).</summary>
    public const string GeluApproximation = "gelu-approximation";

    /// <summary>A dropout's kept elements are scaled by 1/p: p read as the keep probability (TF1 keep_prob).</summary>
    public const string DropoutKeepProbability = "dropout-keep-probability";

    /// <summary>A softmax cross-entropy's loss and logit gradient fit another label smoothing than (1 - e) onehot + e/C: none, or the binary e/2.</summary>
    public const string LabelSmoothingForm = "label-smoothing-form";

    /// <summary>An element-wise loss and its gradient fit a sum (or per-sample sums) instead of the mean over all elements.</summary>
    public const string LossReduction = "loss-reduction";

    /// <summary>The traces differ at step 0, before any training.</summary>
    public const string InitialWeightsMismatch = "initial-weights-mismatch";

    /// <summary>A weight matches the reference's transposed.</summary>
    public const string WeightLayout = "weight-layout";

    /// <summary>The first NaN or infinity.</summary>
    public const string NanInf = "nan-inf";

    /// <summary>An origin of divergence that no other cause explains.</summary>
    public const string UnexplainedDivergence = "unexplained-divergence";

    /// <summary>Every cause id, in the order docs/causes.md lists them: one per detector.</summary>
    public static IReadOnlyList<string> All => [.. Diagnoser.Detectors.Select(d => d.Cause)];
}
