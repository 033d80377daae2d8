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
}
