namespace Parity.Tracing;

/// <summary>
/// What a traced tensor is. The declaration order is the order in which tensors of one step are
/// produced and compared: forward outputs (with batch statistics) by call, the loss, output gradients,
/// parameter gradients, running statistics, parameters; eval records last.
/// </summary>
public enum TensorKind
{
    /// <summary>Train-mode output of a call site.</summary>
    Forward,

    /// <summary>The batch mean a batchnorm call normalized with.</summary>
    BatchMean,

    /// <summary>The (biased, 1/N) batch variance a batchnorm call normalized with.</summary>
    BatchVariance,

    /// <summary>
    /// The mask a dropout call applied in training, in the call's output shape: 1 where the element was kept, 0 where
    /// it was dropped (the 1/(1-p) scale is not in it). A step check replays the step with the backend's own mask.
    /// </summary>
    DropoutMask,

    /// <summary>The mean softmax cross-entropy of the batch (scalar).</summary>
    Loss,

    /// <summary>Fraction of the batch classified correctly in train mode (scalar).</summary>
    TrainAccuracy,

    /// <summary>Gradient of the loss with respect to a call site's output.</summary>
    OutputGradient,

    /// <summary>Gradient of the loss with respect to a parameter (summed over call sites of a shared instance).</summary>
    ParameterGradient,

    /// <summary>A batchnorm instance's running mean after the step.</summary>
    RunningMean,

    /// <summary>A batchnorm instance's running variance after the step.</summary>
    RunningVariance,

    /// <summary>
    /// The number of optimizer updates done (scalar): Adam's t after the step, 0 in the initial state. A backend's own
    /// count, so a step check replays the next update with the same bias correction.
    /// </summary>
    OptimizerStep,

    /// <summary>
    /// One optimizer slot of one parameter after the step, site <c>parameter/slot</c> (e.g. <c>l1.weight/m</c>), in the
    /// parameter's canonical shape: SGD's <c>momentum</c> buffer (PyTorch form), Adam's <c>m</c> and <c>v</c> (docs/trace.md).
    /// </summary>
    OptimizerSlot,

    /// <summary>A parameter after the optimizer update.</summary>
    Parameter,

    /// <summary>Eval-mode output of a call site (running statistics in batchnorm).</summary>
    EvalOutput,

    /// <summary>Eval-mode mean loss (scalar).</summary>
    EvalLoss,

    /// <summary>Eval-mode accuracy (scalar).</summary>
    EvalAccuracy,
}

/// <summary>Names of <see cref="TensorKind"/> as written in specs, traces and worker messages.</summary>
public static class TensorKinds
{
    /// <summary>camelCase name, e.g. <c>outputGradient</c>.</summary>
    public static string Name(this TensorKind kind)
    {
        string s = kind.ToString();
        return char.ToLowerInvariant(s[0]) + s[1..];
    }

    /// <summary>Parses a camelCase (or PascalCase) name; null when unknown.</summary>
    public static TensorKind? TryParse(string? text)
    {
        // Not Enum.TryParse: it also accepts numbers and comma-separated flag combinations ("forward, loss"
        // parses as Loss, "trainAccuracy, evalOutput" as the undefined value 14), which are not kind names.
        foreach (var kind in Enum.GetValues<TensorKind>())
            if (string.Equals(kind.ToString(), text, StringComparison.OrdinalIgnoreCase)) return kind;
        return null;
    }

    /// <summary>Every kind.</summary>
    public static IReadOnlySet<TensorKind> All { get; } = new HashSet<TensorKind>(Enum.GetValues<TensorKind>());

    /// <summary>True for kinds produced in eval mode.</summary>
    public static bool IsEval(this TensorKind kind) => kind >= TensorKind.EvalOutput;

    /// <summary>True for scalar kinds (shape [], site ""): losses, accuracies, the optimizer step count.</summary>
    public static bool IsScalar(this TensorKind kind) =>
        kind is TensorKind.Loss or TensorKind.TrainAccuracy or TensorKind.EvalLoss or TensorKind.EvalAccuracy or TensorKind.OptimizerStep;

    /// <summary>True for the optimizer's own state (its update count and slots): the trainer's, not the model's.</summary>
    public static bool IsOptimizerState(this TensorKind kind) => kind is TensorKind.OptimizerStep or TensorKind.OptimizerSlot;

    /// <summary>True for the kinds that make up a backend's state between steps: parameters, running statistics, optimizer state.</summary>
    public static bool IsState(this TensorKind kind) =>
        kind is TensorKind.Parameter or TensorKind.RunningMean or TensorKind.RunningVariance || kind.IsOptimizerState();

    /// <summary>The state kinds.</summary>
    public static IReadOnlySet<TensorKind> State { get; } = new HashSet<TensorKind>(Enum.GetValues<TensorKind>().Where(IsState));

    /// <summary>The scalars every train record and eval record holds whatever was asked: losses and accuracies.</summary>
    public static IReadOnlySet<TensorKind> AlwaysRecorded { get; } = new HashSet<TensorKind>
    {
        TensorKind.Loss, TensorKind.TrainAccuracy, TensorKind.EvalLoss, TensorKind.EvalAccuracy,
    };
}
