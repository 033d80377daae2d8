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

    /// <summary>RMSprop updates fit eps on the other side of the square root.</summary>
    public const string RmspropEpsilonPlacement = "rmsprop-epsilon-placement";

    /// <summary>RMSprop's first update fits the mean square starting at the other value (0 or TF1's 1).</summary>
    public const string RmspropMeanSquareInit = "rmsprop-mean-square-init";

    /// <summary>Adagrad's first update fits the accumulator starting at the other value (0 or TF's 0.1).</summary>
    public const string AdagradInitialAccumulator = "adagrad-initial-accumulator";

    /// <summary>Weight decay applied coupled (through the optimizer's state) where the spec says decoupled, or the other way round.</summary>
    public const string WeightDecayCoupling = "weight-decay-coupling";

    /// <summary>The L2 term in the loss is the spec's coefficient times 2 or 1/2, or missing (a gradient-term rate carried over as a loss coefficient).</summary>
    public const string L2FactorOfTwo = "l2-factor-of-two";

    /// <summary>Decoupled weight decay multiplied by the learning rate where the spec says not, or the other way round.</summary>
    public const string DecoupledDecayLearningRate = "decoupled-decay-lr";

    /// <summary>SGD updates fit the other momentum form (PyTorch's b = mu b + g or Keras's m = mu m - lr g) once the learning rate changes.</summary>
    public const string SgdMomentumForm = "sgd-momentum-form";

    /// <summary>SGD updates fit gradients clipped by the other norm scope (global or per tensor).</summary>
    public const string GradientClippingScope = "gradient-clipping-scope";

    /// <summary>SGD updates fit the learning-rate schedule counted per epoch or one update off.</summary>
    public const string LrScheduleCount = "lr-schedule-count";

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
