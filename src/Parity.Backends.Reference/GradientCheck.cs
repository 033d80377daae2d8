using Parity.Planning;
using Parity.Randomness;

namespace Parity.Backends.Reference;

/// <summary>The numerical gradient check of one tensor.</summary>
/// <param name="Tensor">A parameter name (<c>l1.weight</c>) or <c>input</c> for the gradient with respect to the batch inputs.</param>
/// <param name="RelativeError">cs231n <c>rel_error</c> over the checked elements: max |a - n| / max(1e-8, |a| + |n|).</param>
/// <param name="Elements">How many elements were checked (all, or a seeded sample of <see cref="GradientCheck.MaxElements"/>).</param>
/// <param name="Identifiable">
/// False for a parameter the loss does not depend on (<see cref="Models.ParameterInfo.Identifiable"/>: a linear bias
/// directly followed by batchnorm). Its true gradient is exactly zero, so both gradients are rounding noise and the
/// relative error of two noises says nothing; callers keep such tensors out of a pass/fail threshold.
/// </param>
/// <param name="ScaledError">
/// max |a - n| over the checked elements divided by the largest |a| of the tensor. cs231n's rel_error is harsh on
/// elements whose gradient is near zero (the loss's rounding noise divided by 2h, about 1e-11 in float64, dominates
/// them), so a large net can show a large RelativeError while ScaledError stays near 1e-9: noise, not a wrong gradient.
/// </param>
public sealed record GradientCheckResult(string Tensor, double RelativeError, int Elements, bool Identifiable = true, double ScaledError = 0);

/// <summary>
/// Numerical gradient check of the float64 reference (seed 003: cs231n <c>eval_numerical_gradient</c> and
/// <c>rel_error</c>): the analytic gradient of every parameter and of the input batch against central
/// differences (f(x + h) - f(x - h)) / 2h of the mean loss in train mode (batch statistics), at the plan's
/// initial state, on the batch of one step. Running statistics are never updated while perturbing.
/// </summary>
/// <remarks>
/// On large batches two effects inflate the relative error without any gradient being wrong: rounding noise of
/// the loss divided by 2h on near-zero gradient elements (see <see cref="GradientCheckResult.ScaledError"/>), and
/// ReLU kinks: a perturbation moves many pre-activations, and one within h of zero bends the finite difference.
/// The second shrinks with h, the first grows as h shrinks; cs231n's notebook (seed 003) shows weight errors of
/// 1e-4 to 1e-5 for the same reasons. Small nets (a few samples, tens of units) stay below 1e-7.
/// </remarks>
public static class GradientCheck
{
    /// <summary>Largest number of elements checked per tensor; larger tensors are sampled.</summary>
    public const int MaxElements = 200;

    /// <summary>The tensor name of the gradient with respect to the batch inputs.</summary>
    public const string InputTensor = "input";

    /// <summary>Checks every parameter (canonical order) and then the input, on <c>plan.BatchFor(step)</c>.</summary>
    /// <param name="plan">The plan; its initial state is the point where gradients are taken.</param>
    /// <param name="step">Whose batch to use (1-based).</param>
    /// <param name="h">The perturbation: each element is evaluated at x + h and x - h.</param>
    public static IReadOnlyList<GradientCheckResult> Run(Plan plan, int step = 1, double h = 1e-5)
    {
        ArgumentNullException.ThrowIfNull(plan);
        if (!(h > 0) || !double.IsFinite(h)) throw new ArgumentOutOfRangeException(nameof(h), h, "the difference step must be a positive number");
        var batch = plan.BatchFor(step);
        var network = new Network<double>(plan.Graph, plan.InitialState, new ParallelOptions()) { Loss = plan.Spec.Loss };
        double[] input = (double[])batch.Inputs.Data.Clone();
        int[] labels = batch.Labels;
        // A copy: with the inputs as targets, perturbing an input must not move its target.
        double[]? targets = plan.Spec.Loss.ElementWise ? (double[]?)batch.Targets?.Data.Clone() : null;

        // The step's dropout masks, held fixed: with its mask a dropout call is linear, so differences see its gradient.
        double[] Mask(int call) => batch.DropoutMask(plan.Graph.Calls[call].Id).Data;
        var pass = network.Forward(input, labels, targets, PassMode.Train, updateRunning: false, Mask);
        network.Backward(pass, inputGradient: true);
        var analytic = network.Gradients.ToDictionary(kv => kv.Key, kv => (double[])kv.Value.Clone());
        double[] inputAnalytic = (double[])pass.InputGradient.Clone();

        double Loss() => network.Forward(input, labels, targets, PassMode.Train, updateRunning: false, Mask).Loss;

        var results = new List<GradientCheckResult>();
        foreach (var p in plan.Graph.Parameters)
        {
            var (error, scaled, count) = Compare(network.Parameters[p.Name], analytic[p.Name], Loss, h, Sample(plan, p.Name, analytic[p.Name].Length));
            results.Add(new GradientCheckResult(p.Name, error, count, p.Identifiable, scaled));
        }
        var (inputError, inputScaled, inputCount) = Compare(input, inputAnalytic, Loss, h, Sample(plan, InputTensor, input.Length));
        results.Add(new GradientCheckResult(InputTensor, inputError, inputCount, ScaledError: inputScaled));
        return results;
    }

    /// <summary>cs231n <c>rel_error</c> of one element pair: |a - b| / max(1e-8, |a| + |b|).</summary>
    public static double RelativeError(double a, double b) => Math.Abs(a - b) / Math.Max(1e-8, Math.Abs(a) + Math.Abs(b));

    private static (double Error, double Scaled, int Count) Compare(double[] values, double[] analytic, Func<double> loss, double h, int[] indices)
    {
        double worst = 0, worstAbsolute = 0, largest = 0;
        foreach (double a in analytic) largest = Math.Max(largest, Math.Abs(a));
        foreach (int k in indices)
        {
            double saved = values[k];
            double plus = saved + h, minus = saved - h;
            values[k] = plus;
            double lossPlus = loss();
            values[k] = minus;
            double lossMinus = loss();
            values[k] = saved;
            // Divide by the step actually taken (plus - minus), not 2h: x + h rounds.
            double numeric = (lossPlus - lossMinus) / (plus - minus);
            worst = Math.Max(worst, RelativeError(analytic[k], numeric));
            worstAbsolute = Math.Max(worstAbsolute, Math.Abs(analytic[k] - numeric));
        }
        return (worst, worstAbsolute / Math.Max(1e-300, largest), indices.Length);
    }

    // Every element up to MaxElements; beyond, a sample from the stream "gradcheck/<tensor>" of the spec's
    // seed, so the same spec always checks the same elements.
    private static int[] Sample(Plan plan, string tensor, int count)
    {
        if (count <= MaxElements) return Enumerable.Range(0, count).ToArray();
        int[] chosen = ParityRandom.Derive(plan.Spec.Seed, "gradcheck/" + tensor).Permutation(count)[..MaxElements];
        Array.Sort(chosen);
        return chosen;
    }
}
