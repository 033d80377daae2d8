using System.Text.Json.Nodes;
using Parity.Specs;
using Parity.Tracing;
using TorchSharp;

namespace Parity.Backends.TorchSharp;

/// <summary>
/// How the canonical spec maps onto TorchSharp/libtorch, in one place: what maps exactly (and how), and
/// what libtorch cannot express, declared as <see cref="ConventionMismatch"/> instead of approximated.
/// </summary>
/// <remarks>
/// Exact mappings (docs/conventions.md sections 1-4):
/// batchnorm momentum is PyTorch's own meaning, run = (1 - m) run + m batch [P1, TS], so it is passed
/// unchanged, and so is eps (inside the square root) [P2]; a shared instance is one module called at
/// several sites, so libtorch updates its running statistics once per call, in call order; linear weights
/// are [out, in] in both [P3, TS]; SGD is torch.optim.SGD with dampening 0 (v = mu v + g; p -= lr v) and
/// Adam is torch.optim.Adam with the spec's betas and eps in the sqrt(v_hat) + eps form [P5, TS]; the loss
/// is mean softmax cross-entropy [P6].
/// </remarks>
public static class TorchSharpConventions
{
    /// <summary>Every kind that depends on the parameter trajectory: all of them once a parameter differs.</summary>
    private static readonly IReadOnlyList<string> s_parameterAndDownstream =
    [
        TensorKind.Parameter.Name(), TensorKind.Forward.Name(), TensorKind.BatchMean.Name(), TensorKind.BatchVariance.Name(),
        TensorKind.Loss.Name(), TensorKind.TrainAccuracy.Name(), TensorKind.OutputGradient.Name(),
        TensorKind.ParameterGradient.Name(), TensorKind.RunningMean.Name(), TensorKind.RunningVariance.Name(),
        TensorKind.OptimizerSlot.Name(), TensorKind.EvalOutput.Name(), TensorKind.EvalLoss.Name(), TensorKind.EvalAccuracy.Name(),
    ];

    /// <summary>The running variance feeds only eval-mode batchnorm, so only it and eval kinds differ.</summary>
    private static readonly IReadOnlyList<string> s_optimizerState = [TensorKind.OptimizerSlot.Name(), TensorKind.Parameter.Name()];

    private static readonly IReadOnlyList<string> s_runningVarianceAndEval =
    [
        TensorKind.RunningVariance.Name(), TensorKind.EvalOutput.Name(), TensorKind.EvalLoss.Name(), TensorKind.EvalAccuracy.Name(),
    ];

    /// <summary>
    /// The settings of <paramref name="spec"/> that libtorch cannot express exactly, with what it does instead, each with the
    /// spec value that describes what libtorch computes (<see cref="ConventionMismatch.Value"/>).
    /// </summary>
    public static IReadOnlyList<ConventionMismatch> Mismatches(ScenarioSpec spec)
    {
        ArgumentNullException.ThrowIfNull(spec);
        var mismatches = new List<ConventionMismatch>();
        for (int i = 0; i < spec.Model.Layers.Count; i++)
        {
            // libtorch's batch_norm always feeds var * N/(N-1) into the running variance [P1, P2];
            // there is no option for the biased estimator.
            if (spec.Model.Layers[i] is BatchNormSpec { RunningVariance: RunningVarianceEstimator.Biased } bn)
                mismatches.Add(new ConventionMismatch(
                    $"$.model.layers[{i}].runningVariance",
                    $"biased (1/N) batch variance into the running variance of '{bn.Name}'",
                    "unbiased (1/(N-1)): libtorch's BatchNorm1d always stores the unbiased batch variance",
                    s_runningVarianceAndEval) { Value = JsonValue.Create("unbiased") });
        }

        // TorchSharp's Adam forms 1 - beta and 1 - beta^t in double (Optimizers/Adam.cs) [TS].
        if (spec.Optimizer is AdamSpec { BetaPrecision: BetaPrecision.Float32 })
            mismatches.Add(new ConventionMismatch(
                "$.optimizer.betaPrecision",
                "float32: bias correction from float32 powers of beta",
                "float64: TorchSharp's Adam forms 1 - beta and 1 - beta^t in double",
                s_optimizerState) { Value = JsonValue.Create("float64") });

        // torch.optim.Adam only has the sqrt(v_hat) + eps form [P5, TS].
        if (spec.Optimizer is AdamSpec { EpsilonForm: EpsilonForm.EpsilonHat } adam)
            mismatches.Add(new ConventionMismatch(
                "$.optimizer.epsilonForm",
                $"epsilonHat: p -= lr sqrt(1-b2^t)/(1-b1^t) m / (sqrt(v) + eps), eps {adam.Eps}",
                $"sqrtVHat: torch.optim.Adam computes p -= lr m_hat / (sqrt(v_hat) + eps) with eps {adam.Eps}",
                s_parameterAndDownstream) { Value = JsonValue.Create("sqrtVHat") });
        mismatches.AddRange(RmspropAndAdagrad(spec.Optimizer));
        return mismatches;
    }

    /// <summary>
    /// torch.optim.RMSprop and Adagrad put eps outside the square root only [P10, TS], and RMSprop's square_avg always
    /// starts at zeros; an eps of 0 has no placement, so it is no mismatch.
    /// </summary>
    private static IEnumerable<ConventionMismatch> RmspropAndAdagrad(OptimizerSpec optimizer)
    {
        var (placement, eps) = optimizer switch
        {
            RmspropSpec r => (r.EpsilonPlacement, r.Eps),
            AdagradSpec a => (a.EpsilonPlacement, a.Eps),
            _ => (EpsilonPlacement.Outside, 0),
        };
        if (placement == EpsilonPlacement.Inside && eps > 0)
            yield return new ConventionMismatch(
                "$.optimizer.epsilonPlacement",
                $"inside: denominator sqrt(s + eps), eps {eps}",
                $"outside: torch.optim.{(optimizer is RmspropSpec ? "RMSprop" : "Adagrad")} divides by sqrt(s) + eps",
                s_parameterAndDownstream) { Value = JsonValue.Create("outside") };
        if (optimizer is RmspropSpec { MeanSquareInit: > 0 } rms)
            yield return new ConventionMismatch(
                "$.optimizer.meanSquareInit",
                $"the mean square starts at {rms.MeanSquareInit}",
                "0: torch.optim.RMSprop creates square_avg as zeros",
                s_parameterAndDownstream) { Value = JsonValue.Create(0) };
    }

    /// <summary>The eps libtorch's clip_grad_norm_ adds to the norm (torch/nn/utils/clip_grad) [P12].</summary>
    public const double LibtorchClipEps = 1e-6;

    /// <summary>
    /// The spec's learning-rate schedule as a libtorch scheduler stepped after every update (its count is then the
    /// canonical k): StepLR for a step or staircase exponential schedule, LambdaLR with the closed form otherwise
    /// (CosineAnnealingLR is recursive and rises again after T_max); null for a constant rate.
    /// </summary>
    public static torch.optim.lr_scheduler.LRScheduler? Scheduler(torch.optim.Optimizer optimizer, OptimizerSpec spec) => spec.Schedule switch
    {
        ConstantSchedule => null,
        StepSchedule step => torch.optim.lr_scheduler.StepLR(optimizer, step.StepSize, step.Gamma),
        ExponentialSchedule { Staircase: true } e => torch.optim.lr_scheduler.StepLR(optimizer, e.DecaySteps, e.Rate),
        var schedule => torch.optim.lr_scheduler.LambdaLR(optimizer, k => schedule.At(spec.LearningRate, k) / spec.LearningRate),
    };
}
